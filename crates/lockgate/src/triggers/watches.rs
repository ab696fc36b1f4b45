//! Which source changes start which pipelines, as pure functions of the declarations: a
//! pipeline's git source actions become [`Watch`]es, and [`Watch::decide`] says whether a ref
//! that moved starts an execution, and of which commit.
//!
//! - A V2 pipeline's `triggers` naming the source action decide alone: a push starts an
//!   execution when one of its `push` filters matches (`branches` or `tags` includes/excludes,
//!   and for branches the `filePaths` of the change), at the commit pushed, whatever the
//!   action's `BranchName`.
//! - Otherwise the action's own branch is watched unless change detection is off
//!   (`PollForSourceChanges: false` for CodeCommit, `DetectChanges: false` for a connection).

use globset::{GlobBuilder, GlobMatcher};
use lockgate_shapes::{ActionOwner, GitPushFilter, PipelineDeclaration};

/// Where a source action fetches from, as lockgate.toml names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A `[[repositories]]` name (CodeCommit's `RepositoryName`).
    Repository(String),
    /// A `[[connections]]` ARN and the `FullRepositoryId` below it.
    Connection {
        /// The connection's ARN.
        arn: String,
        /// `owner/repo`.
        full_repository_id: String,
    },
}

/// One source action that starts its pipeline when its repository changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// The pipeline.
    pub pipeline: String,
    /// The source action.
    pub action: String,
    /// Its repository.
    pub source: Source,
    /// Its `BranchName`.
    pub branch: String,
    /// The V2 trigger's push filters for this action, when it has any.
    pub filters: Option<Vec<GitPushFilter>>,
}

/// A ref that moved in a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefMove {
    /// The branch or tag name (without `refs/heads/` / `refs/tags/`).
    pub name: String,
    /// Whether it is a tag.
    pub tag: bool,
    /// The commit it points at now.
    pub commit: String,
    /// The files the move changed (for branches; empty when unknown).
    pub files: Vec<String>,
}

/// How a change came to be seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// By polling the repository.
    Poll,
    /// By the repository's push hook.
    Hook,
}

/// Why an execution starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The pipeline.
    pub pipeline: String,
    /// The source action and the commit it fetches.
    pub action: String,
    /// The commit.
    pub commit: String,
    /// Whether a V2 trigger filter matched (rather than the action's own branch).
    pub by_trigger: bool,
}

/// The watches of `decl`: its CodeCommit and CodeStarSourceConnection source actions.
pub fn watches_of(decl: &PipelineDeclaration) -> Vec<Watch> {
    let mut watches = Vec::new();
    for stage in &decl.stages {
        for action in &stage.actions {
            let t = &action.action_type_id;
            if t.owner != ActionOwner::Aws || t.category != lockgate_shapes::ActionCategory::Source
            {
                continue;
            }
            let config = action.configuration.clone().unwrap_or_default();
            let get = |k: &str| config.get(k).cloned();
            let off = |k: &str| get(k).is_some_and(|v| v.eq_ignore_ascii_case("false"));
            let (source, detect) = match t.provider.as_str() {
                "CodeCommit" => match get("RepositoryName") {
                    Some(name) => (Source::Repository(name), !off("PollForSourceChanges")),
                    None => continue,
                },
                "CodeStarSourceConnection" => match (get("ConnectionArn"), get("FullRepositoryId"))
                {
                    (Some(arn), Some(full_repository_id)) => (
                        Source::Connection {
                            arn,
                            full_repository_id,
                        },
                        !off("DetectChanges"),
                    ),
                    _ => continue,
                },
                _ => continue,
            };
            let filters: Vec<GitPushFilter> = decl
                .triggers
                .iter()
                .flatten()
                .filter(|tr| tr.git_configuration.source_action_name == action.name)
                .flat_map(|tr| tr.git_configuration.push.clone().unwrap_or_default())
                .collect();
            let has_trigger = decl
                .triggers
                .iter()
                .flatten()
                .any(|tr| tr.git_configuration.source_action_name == action.name);
            if !has_trigger && !detect {
                continue;
            }
            watches.push(Watch {
                pipeline: decl.name.clone(),
                action: action.name.clone(),
                source,
                branch: get("BranchName").unwrap_or_default(),
                filters: has_trigger.then_some(filters),
            });
        }
    }
    watches
}

impl Watch {
    /// Whether `moved` starts this watch's pipeline.
    pub fn decide(&self, moved: &RefMove) -> Option<Start> {
        let start = |by_trigger| Start {
            pipeline: self.pipeline.clone(),
            action: self.action.clone(),
            commit: moved.commit.clone(),
            by_trigger,
        };
        match &self.filters {
            Some(filters) => filters
                .iter()
                .any(|f| push_matches(f, moved))
                .then(|| start(true)),
            None => (!moved.tag && moved.name == self.branch).then(|| start(false)),
        }
    }
}

/// Whether one push filter matches a ref move.
fn push_matches(filter: &GitPushFilter, moved: &RefMove) -> bool {
    if moved.tag {
        return filter
            .tags
            .as_ref()
            .is_some_and(|t| included(&t.includes, &t.excludes, &moved.name));
    }
    let Some(branches) = &filter.branches else {
        return false;
    };
    if !included(&branches.includes, &branches.excludes, &moved.name) {
        return false;
    }
    match &filter.file_paths {
        None => true,
        Some(paths) => moved
            .files
            .iter()
            .any(|f| included(&paths.includes, &paths.excludes, f)),
    }
}

/// Whether `name` matches one of `includes` (or there are none) and none of `excludes`.
fn included(includes: &Option<Vec<String>>, excludes: &Option<Vec<String>>, name: &str) -> bool {
    let any = |patterns: &Option<Vec<String>>| {
        patterns
            .iter()
            .flatten()
            .any(|p| glob(p).is_some_and(|g| g.is_match(name)))
    };
    let wanted = includes.as_ref().is_none_or(|i| i.is_empty()) || any(includes);
    wanted && !any(excludes)
}

/// A glob as CodePipeline's trigger filters write them: `*` within one path segment, `**`
/// across segments.
fn glob(pattern: &str) -> Option<GlobMatcher> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockgate_shapes::{
        GitBranchFilterCriteria, GitFilePathFilterCriteria, GitTagFilterCriteria,
    };

    fn moved(name: &str, tag: bool, files: &[&str]) -> RefMove {
        RefMove {
            name: name.into(),
            tag,
            commit: "c0ffee".into(),
            files: files.iter().map(|f| f.to_string()).collect(),
        }
    }

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    fn watch(filters: Option<Vec<GitPushFilter>>) -> Watch {
        Watch {
            pipeline: "p".into(),
            action: "Source".into(),
            source: Source::Repository("app".into()),
            branch: "main".into(),
            filters,
        }
    }

    #[test]
    fn without_triggers_only_the_action_s_branch_starts_it() {
        let w = watch(None);
        let start = w.decide(&moved("main", false, &[])).expect("starts");
        assert_eq!(start.commit, "c0ffee");
        assert!(!start.by_trigger);
        assert!(w.decide(&moved("dev", false, &[])).is_none());
        assert!(w.decide(&moved("main", true, &[])).is_none());
    }

    #[test]
    fn trigger_filters_decide_by_branch_tag_and_file_path() {
        let w = watch(Some(vec![
            GitPushFilter {
                branches: Some(GitBranchFilterCriteria {
                    includes: strings(&["main", "release/*"]),
                    excludes: strings(&["release/old"]),
                }),
                file_paths: Some(GitFilePathFilterCriteria {
                    includes: strings(&["src/**"]),
                    excludes: strings(&["src/**/*.md"]),
                }),
                tags: None,
            },
            GitPushFilter {
                tags: Some(GitTagFilterCriteria {
                    includes: strings(&["v*"]),
                    excludes: None,
                }),
                branches: None,
                file_paths: None,
            },
        ]));
        assert!(w.decide(&moved("main", false, &["src/a/b.rs"])).is_some());
        assert!(w
            .decide(&moved("release/2", false, &["src/x.rs"]))
            .is_some());
        assert!(w
            .decide(&moved("release/2/x", false, &["src/x.rs"]))
            .is_none());
        assert!(w
            .decide(&moved("release/old", false, &["src/x.rs"]))
            .is_none());
        assert!(w.decide(&moved("main", false, &["docs/x.rs"])).is_none());
        assert!(w
            .decide(&moved("main", false, &["src/a/README.md"]))
            .is_none());
        assert!(w.decide(&moved("v1.2", true, &[])).expect("tag").by_trigger);
        assert!(w.decide(&moved("x1.2", true, &[])).is_none());
    }
}
