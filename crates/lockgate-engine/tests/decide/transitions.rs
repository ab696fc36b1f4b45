//! transitions
