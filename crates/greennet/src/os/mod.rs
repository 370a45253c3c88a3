//! OS-specific networking, mirroring `std::os`.

pub mod linux;
pub mod unix;
