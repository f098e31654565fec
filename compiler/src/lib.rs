//! lowbit compiler.
