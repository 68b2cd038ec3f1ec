//! pd
