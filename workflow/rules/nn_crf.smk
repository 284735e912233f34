# Rules for nn_crf (see DESIGN.md).
