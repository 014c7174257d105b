"""BI publishing: the snapshot BI tools open (`snapshot`), the scorecard page (`page`) and text
(`scorecard`), and the data dictionary (`dictionary`)."""
