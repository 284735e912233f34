# Rules for dbm (see DESIGN.md).
