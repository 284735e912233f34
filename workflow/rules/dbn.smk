# Rules for dbn (see DESIGN.md).
