//! lowbit passes.
