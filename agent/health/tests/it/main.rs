//! Integration tests: the reboot simulator over the real `outpost-boot` backends, and kill -9
//! of a child process running the driver.

mod fakes;
mod kill9;
mod reboot;
mod sim;
