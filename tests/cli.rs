//! CLI: every command and its error cases.
