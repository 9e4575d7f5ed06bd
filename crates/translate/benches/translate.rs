//! Translation cost (placeholder, filled below).
fn main() {}
