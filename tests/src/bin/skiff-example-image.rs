//! Writes the example image (`skiff-test/busybox:1`: Debian's static busybox and a small
//! probe program) as a `docker save` archive, for machines that cannot pull from a
//! registry: `skiff-example-image OUT.tar`, then drop it in an agent's
//! `<data-dir>/images/` (or `skiff-agent image import OUT.tar`).

fn main() {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: skiff-example-image OUT.tar");
        std::process::exit(2);
    };
    let out = std::path::PathBuf::from(out);
    skiff_tests::image::docker_save(&out, skiff_tests::node::IMAGE);
    println!("{} ({})", out.display(), skiff_tests::node::IMAGE);
}
