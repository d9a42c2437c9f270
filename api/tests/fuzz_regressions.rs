//! Inputs the fuzzers found; each once crashed the parser.

#[test]
fn multibyte_plain_scalar_document() {
    let text = "\u{4f60}\ndtU";
    let e = skiff_api::manifest::parse_manifests(text).unwrap_err();
    assert!(e.errors[0].contains("expected an object"), "{e}");
}
