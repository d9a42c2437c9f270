//! Any text into the manifest parser. A manifest that parses must print as YAML that
//! reads back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(manifests) = skiff_api::manifest::parse_manifests(text) else { return };
    for m in manifests {
        let v = m.object.to_value();
        let yaml = skiff_api::yaml::to_yaml(&v);
        let back = skiff_api::yaml::parse_documents(&yaml).expect("printed YAML must parse");
        assert_eq!(back.len(), 1, "{yaml}");
        assert_eq!(back[0].value, v, "{yaml}");
    }
});
