//! The committed table of storage SOP classes is what its generator writes today, byte for
//! byte (`cargo run -p dicom-deid-dimse --example gen-storage-classes` rewrites it).

#[allow(dead_code)]
#[path = "../examples/gen-storage-classes.rs"]
mod generator;

#[test]
fn the_committed_storage_classes_are_what_the_generator_writes() {
    let generated = generator::generate_from_registry().expect("the registry source");
    let committed = std::fs::read_to_string(generator::output_path()).unwrap();
    assert!(
        committed == generated,
        "crates/dimse/src/storage_classes.rs is out of date: run `{}`",
        generator::COMMAND
    );
    assert!(
        committed.contains(generator::COMMAND),
        "the header names the command"
    );
}
