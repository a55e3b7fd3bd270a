//! The Python package's three lists of its API agree: the functions and classes the extension
//! registers (src/lib.rs), what `attnsvm/__init__.py` re-exports (`__all__`), and the type stubs
//! (`attnsvm/__init__.pyi`). (Building this test also builds the extension itself, with the
//! workspace's features: see Cargo.toml.)

use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Names registered by `wrap_pyfunction!(module::name, m)` and `add_class::<module::Name>()`.
fn registered() -> BTreeSet<String> {
    let lib = read("src/lib.rs");
    let mut names = BTreeSet::new();
    for (open, close) in [("wrap_pyfunction!(", ","), ("add_class::<", ">")] {
        for chunk in lib.split(open).skip(1) {
            let path = chunk.split(close).next().unwrap();
            names.insert(path.rsplit("::").next().unwrap().trim().to_string());
        }
    }
    names
}

/// The quoted names of `__all__ = [...]` in `__init__.py`, without dunders.
fn exported() -> BTreeSet<String> {
    let init = read("python/attnsvm/__init__.py");
    let list = init
        .split("__all__ = [")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap();
    list.split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty() && !s.starts_with("__"))
        .collect()
}

/// `def name(` and `class Name` at the top level of the stubs.
fn stubbed() -> BTreeSet<String> {
    read("python/attnsvm/__init__.pyi")
        .lines()
        .filter_map(|l| l.strip_prefix("def ").or_else(|| l.strip_prefix("class ")))
        .map(|l| l.split(['(', ':']).next().unwrap().trim().to_string())
        .collect()
}

#[test]
fn registered_exported_and_stubbed_names_agree() {
    let reg = registered();
    assert!(reg.len() >= 10, "parsed too few registrations: {reg:?}");
    assert_eq!(reg, exported(), "src/lib.rs against __init__.py's __all__");
    assert_eq!(reg, stubbed(), "src/lib.rs against __init__.pyi");
}
