//! Artifacts as zip files: a directory's files chosen by globs (an output artifact's `files`, a
//! buildspec's `artifacts.files`) packed into one, and one unpacked into a workspace.

use std::fs;
use std::io::{Cursor, Read, Write};
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};
use zip::write::SimpleFileOptions;

use crate::ArtifactError;

/// The files under `root` whose path relative to it (with `/` separators) matches one of
/// `patterns` (`**/*` for everything), as a zip with entries in path order and unix modes kept.
/// Symbolic links and other special files are left out. An empty `patterns` packs everything.
pub fn pack(root: &Path, patterns: &[String]) -> Result<Vec<u8>, ArtifactError> {
    let everything = ["**/*".to_string()];
    let patterns = if patterns.is_empty() {
        &everything[..]
    } else {
        patterns
    };
    let globs = glob_set(patterns)?;
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| ArtifactError::Io {
            what: format!("listing {}", root.display()),
            source: e.into(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(root) else {
            continue;
        };
        let name = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if globs.is_match(&name) {
            files.push((name, entry.path().to_path_buf()));
        }
    }
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, path) in files {
        let mut options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path)
                .map_err(ArtifactError::io(format!("reading {}", path.display())))?
                .permissions()
                .mode();
            options = options.unix_permissions(mode & 0o777);
        }
        let bytes =
            fs::read(&path).map_err(ArtifactError::io(format!("reading {}", path.display())))?;
        writer
            .start_file(name.as_str(), options)
            .map_err(|e| ArtifactError::BadArchive(e.to_string()))?;
        writer
            .write_all(&bytes)
            .map_err(ArtifactError::io(format!("packing {name}")))?;
    }
    let cursor = writer
        .finish()
        .map_err(|e| ArtifactError::BadArchive(e.to_string()))?;
    Ok(cursor.into_inner())
}

/// Unpacks `zip` into `dest` (created if missing), keeping unix modes. An entry whose name would
/// land outside `dest` (`../x`, an absolute path) refuses the whole archive before anything is
/// written.
pub fn unpack(zip: &[u8], dest: &Path) -> Result<(), ArtifactError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip))
        .map_err(|e| ArtifactError::BadArchive(e.to_string()))?;
    for i in 0..archive.len() {
        let entry = archive
            .by_index(i)
            .map_err(|e| ArtifactError::BadArchive(e.to_string()))?;
        if entry.enclosed_name().is_none() {
            return Err(ArtifactError::BadArchive(format!(
                "the entry {:?} would be written outside the workspace",
                entry.name()
            )));
        }
    }
    fs::create_dir_all(dest).map_err(ArtifactError::io(format!("creating {}", dest.display())))?;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| ArtifactError::BadArchive(e.to_string()))?;
        let Some(relative) = entry.enclosed_name() else {
            continue;
        };
        let path = dest.join(relative);
        if entry.is_dir() {
            fs::create_dir_all(&path)
                .map_err(ArtifactError::io(format!("creating {}", path.display())))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(ArtifactError::io(format!("creating {}", parent.display())))?;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| ArtifactError::BadArchive(format!("{}: {e}", entry.name())))?;
        fs::write(&path, &bytes)
            .map_err(ArtifactError::io(format!("writing {}", path.display())))?;
        #[cfg(unix)]
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o777)).map_err(
                ArtifactError::io(format!("setting the mode of {}", path.display())),
            )?;
        }
    }
    Ok(())
}

fn glob_set(patterns: &[String]) -> Result<GlobSet, ArtifactError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        // CodeBuild's `**/*` also matches files at the root; globset's `**/` does as well.
        let glob = Glob::new(pattern).map_err(|e| ArtifactError::BadPattern {
            pattern: pattern.clone(),
            reason: e.kind().to_string(),
        })?;
        builder.add(glob);
    }
    builder.build().map_err(|e| ArtifactError::BadPattern {
        pattern: patterns.join(", "),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, name: &str, text: &str) {
        let path = root.join(name);
        fs::create_dir_all(path.parent().expect("a parent")).expect("dirs");
        fs::write(path, text).expect("write");
    }

    fn files(root: &Path) -> Vec<String> {
        let mut out: Vec<String> = walkdir::WalkDir::new(root)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                e.path()
                    .strip_prefix(root)
                    .expect("inside")
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_packed_directory_unpacks_to_the_same_files_and_modes() {
        let src = tempfile::tempdir().expect("tempdir");
        write(src.path(), "README.md", "hello");
        write(src.path(), "bin/deploy.sh", "#!/bin/sh\necho deploy\n");
        write(src.path(), "dist/app/index.html", "<h1>app</h1>");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(
                src.path().join("bin/deploy.sh"),
                fs::Permissions::from_mode(0o755),
            )
            .expect("chmod");
        }
        let zip = pack(src.path(), &[]).expect("packed");
        let dest = tempfile::tempdir().expect("tempdir");
        unpack(&zip, dest.path()).expect("unpacked");
        assert_eq!(
            files(dest.path()),
            ["README.md", "bin/deploy.sh", "dist/app/index.html"]
        );
        assert_eq!(
            fs::read_to_string(dest.path().join("dist/app/index.html")).expect("read"),
            "<h1>app</h1>"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dest.path().join("bin/deploy.sh"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755, "the executable bit survives");
        }
        assert_eq!(
            pack(src.path(), &[]).expect("again"),
            zip,
            "packing is deterministic"
        );
    }

    #[test]
    fn globs_choose_the_files() {
        let src = tempfile::tempdir().expect("tempdir");
        write(src.path(), "dist/app.js", "js");
        write(src.path(), "dist/sub/style.css", "css");
        write(src.path(), "src/main.rs", "rs");
        let zip = pack(src.path(), &["dist/**/*".to_string()]).expect("packed");
        let dest = tempfile::tempdir().expect("tempdir");
        unpack(&zip, dest.path()).expect("unpacked");
        assert_eq!(files(dest.path()), ["dist/app.js", "dist/sub/style.css"]);
        assert!(matches!(
            pack(src.path(), &["[".to_string()]),
            Err(ArtifactError::BadPattern { .. })
        ));
    }

    #[test]
    fn an_entry_that_would_land_outside_is_refused_and_nothing_is_written() {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .start_file("ok.txt", SimpleFileOptions::default())
            .expect("entry");
        writer.write_all(b"fine").expect("write");
        writer
            .start_file("../escape.txt", SimpleFileOptions::default())
            .expect("entry");
        writer.write_all(b"evil").expect("write");
        let zip = writer.finish().expect("finished").into_inner();
        let parent = tempfile::tempdir().expect("tempdir");
        let dest = parent.path().join("workspace");
        let err = unpack(&zip, &dest).expect_err("refused");
        assert!(err.to_string().contains("outside the workspace"), "{err}");
        assert!(!parent.path().join("escape.txt").exists());
        assert!(!dest.join("ok.txt").exists(), "nothing is written");
        assert!(matches!(
            unpack(b"not a zip", &dest),
            Err(ArtifactError::BadArchive(_))
        ));
    }
}
