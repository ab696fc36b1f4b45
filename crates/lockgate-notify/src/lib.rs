//! Approval notifications.
