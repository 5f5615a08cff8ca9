//! End-to-end tests of the real app: the WebAssembly build that
//! `cargo xtask build-app` leaves in `app/dist`, served by the real server
//! on loopback, driven in Debian's headless Chromium. Each test is one of
//! the app issue's scenarios; screenshots of the main screens at 360×640
//! land in `target/e2e-screenshots/`.

mod daily;
mod harness;
mod held;
mod phone;
mod photos;
mod province;
mod review;
mod scenarios;
mod staff;
