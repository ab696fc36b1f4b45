//! Runs every fuzz target's body over its committed seed corpus (`fuzz/corpus/<target>/`), so
//! the stable toolchain exercises what `cargo fuzz run` starts from, and a reduced crash input
//! added there stays fixed. The seeds are real inputs, so each must also get as far as it
//! claims: a seed named `invalid-*` is refused by the production code, every other one is
//! accepted all the way.

use std::path::{Path, PathBuf};

use lockgate_fuzz::{Reached, TARGETS};

fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus of {target} is missing ({e})"))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn every_seed_of_every_fuzz_target_gets_the_answer_its_name_says() {
    for (target, body) in TARGETS {
        let seeds = seeds(target);
        assert!(seeds.len() >= 3, "{target} has a handful of seeds");
        for seed in seeds {
            let name = seed
                .file_name()
                .expect("a seed has a name")
                .to_string_lossy()
                .into_owned();
            let data = std::fs::read(&seed).expect("a seed is readable");
            let expected = if name.starts_with("invalid-") {
                Reached::Refused
            } else {
                Reached::Accepted
            };
            assert_eq!(body(&data), expected, "{target}/{name}");
        }
    }
}
