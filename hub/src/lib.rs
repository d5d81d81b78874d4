//! outpost-hub library
