//! lowbit tests.
