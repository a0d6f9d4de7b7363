//! The README's layout table is the map of the tree: a newcomer reads the layers there, so
//! it must name every crate of the workspace and the BPF programs' folder.

use std::path::Path;

#[test]
fn readme_layout_names_every_crate_and_bpf() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let start = readme.find("\n## Layout").expect("a Layout section");
    let layout = &readme[start + 1..];
    let layout = &layout[..layout.find("\n## ").unwrap_or(layout.len())];
    let mut missing = Vec::new();
    for e in std::fs::read_dir(root.join("crates")).expect("crates/") {
        let path = e.expect("entry").path();
        if !path.join("Cargo.toml").is_file() {
            continue;
        }
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if !layout.contains(&format!("`crates/{name}`")) {
            missing.push(format!("crates/{name}"));
        }
    }
    if !layout.contains("`bpf/`") {
        missing.push("bpf/".to_string());
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "README.md's layout table does not name: {}",
        missing.join(", ")
    );
}
