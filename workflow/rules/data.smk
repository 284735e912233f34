# Rules for data (see DESIGN.md).
