//! Link the worker's binaries with packed relative relocations (DT_RELR) on GNU/Linux.
//!
//! A position-independent binary of this size carries a few hundred thousand relative relocations. As
//! 24-byte RELA entries they were 5 MB that the loader read at every start (and the idle worker's resident
//! size counted); packed they take under 100 KB. GNU ld 2.38+ understands the flag (an older one ignores it
//! with a warning), and it packs only when the C library it links against supports DT_RELR (glibc 2.36+), so
//! a binary built here runs where that glibc or a newer one is, as a binary built against glibc 2.36 does anyway.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.contains("linux-gnu") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
