//! Links the guest with a 64 KiB stack instead of wasm-ld's 1 MiB default: its routes need
//! little, and each request's fresh instance then starts with two pages of linear memory
//! rather than seventeen, which the host resets after every request.
fn main() {
    println!("cargo:rustc-link-arg=-zstack-size=65536");
}
