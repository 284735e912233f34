# Rules for rnn_hmm (see DESIGN.md).
