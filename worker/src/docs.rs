//! The plugin reference (`docs/connectors/`), rendered from the registry's `ConfigDef`s: one page per
//! connector, one for the keys every connector takes, one for the transforms, one for the predicates, and an
//! index. `connect plugins --docs DIR` writes it; a test fails when the committed pages differ from it, so
//! the docs cannot drift from what validation accepts.
//!
//! The page layout lives here, beside the registry it walks; the table of one `ConfigDef` is
//! `ConfigDef::to_markdown` in connect-core, as Kafka's `ConfigDef` renders its own docs.
//! Test-only connectors (connect-testing's FlakySource and RejectingSink) are left out: they exist to test the
//! runtime, not to be used.

use connect_core::config_doc::markdown_cell;
use connect_core::plugin::ConnectorPlugin;
use connect_core::{ConfigDef, ConnectorType};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::connector::common_def;
use crate::registry::Registry;

/// Where the committed reference lives, relative to the repository root.
pub const DOCS_DIR: &str = "docs/connectors";

/// The second line of every generated page; [`write`] removes only stale files that carry it.
const MARKER: &str = "<!-- Generated from the plugins' ConfigDefs by `connect plugins --docs docs/connectors`; do not edit. -->";

const REGENERATE: &str = "cargo run -p connect-worker -- plugins --docs docs/connectors";

/// The connectors the reference documents: every registered one but the test-only plugins.
pub fn documented_connectors(registry: &Registry) -> Vec<&ConnectorPlugin> {
    let test_only: Vec<&str> = connect_testing::plugins().iter().map(|p| p.class).collect();
    registry.connectors.iter().filter(|p| !test_only.contains(&p.class)).collect()
}

/// A connector's page name: its first lower-case alias (`file-source`, `postgres-sink`), else its simple
/// class name without `Connector`, in kebab case (`HttpSinkConnector` → `http-sink`).
pub fn short_name(plugin: &ConnectorPlugin) -> String {
    let kebab_alias = |a: &&&str| !a.is_empty() && a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if let Some(alias) = plugin.aliases.iter().find(kebab_alias) {
        return alias.to_string();
    }
    let simple = simple_name(plugin.class);
    let simple = simple.strip_suffix("Connector").unwrap_or(simple);
    let mut out = String::new();
    let mut prev_lower = false;
    for c in simple.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('-');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn simple_name(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

/// Every page of the reference: file name → content.
pub fn render(registry: &Registry) -> BTreeMap<String, String> {
    let mut pages = BTreeMap::new();
    let connectors = documented_connectors(registry);
    for plugin in &connectors {
        let page = format!("{}.md", short_name(plugin));
        let previous = pages.insert(page.clone(), connector_page(plugin));
        assert!(previous.is_none(), "two connectors would both be documented in {page}: give one a lower-case alias of its own");
    }
    pages.insert("common.md".to_string(), common_page());
    pages.insert("transforms.md".to_string(), transforms_page(registry));
    pages.insert("predicates.md".to_string(), predicates_page(registry));
    pages.insert("README.md".to_string(), index_page(registry, &connectors));
    pages
}

/// Write the reference into `dir` (created if missing) and remove generated pages that are no longer
/// generated (a connector that left the registry); files without the generated marker are left alone.
/// Returns the files written.
pub fn write(registry: &Registry, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let pages = render(registry);
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.ends_with(".md") && !pages.contains_key(&name) && is_generated(&path) {
            std::fs::remove_file(&path)?;
        }
    }
    let mut written = Vec::new();
    for (name, content) in pages {
        let path = dir.join(name);
        std::fs::write(&path, content)?;
        written.push(path);
    }
    Ok(written)
}

fn is_generated(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.lines().take(3).any(|l| l == MARKER))
}

fn header(title: &str) -> String {
    format!("# {title}\n\n{MARKER}\n\n")
}

fn names(plugin: &ConnectorPlugin) -> Vec<String> {
    let simple = simple_name(plugin.class);
    let mut names = vec![plugin.class.to_string(), simple.to_string()];
    if let Some(short) = simple.strip_suffix("Connector") {
        names.push(short.to_string());
    }
    names.extend(plugin.aliases.iter().map(|a| a.to_string()));
    let mut unique = Vec::new();
    for n in names {
        if !unique.contains(&n) {
            unique.push(n);
        }
    }
    unique
}

fn code_list(items: &[String]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

fn connector_page(plugin: &ConnectorPlugin) -> String {
    let connector = (plugin.create)();
    let kind = plugin.kind.as_str();
    let mut out = header(&short_name(plugin));
    out.push_str(&format!(
        "A {kind} connector. `connector.class` may be any of: {}.\n\n\
         Its own keys are below. The keys every {kind} connector takes (`name`, `tasks.max`, converters, \
         transforms, error handling{}) are in [common.md](common.md).\n\n",
        code_list(&names(plugin)),
        if plugin.kind == ConnectorType::Sink { ", `topics`" } else { "" }
    ));
    out.push_str(&connector.as_connector().config_def().to_markdown());
    out
}

fn common_page() -> String {
    let source = common_def(ConnectorType::Source);
    let sink = common_def(ConnectorType::Sink);
    let only = |def: &ConfigDef, other: &ConfigDef, in_other: bool| {
        def.keys().iter().filter(|k| other.key(&k.name).is_some() == in_other).fold(ConfigDef::new(), |d, k| d.define(k.clone()))
    };
    let mut out = header("Keys every connector takes");
    out.push_str(
        "The runtime's keys, valid in every connector config beside the connector's own (Kafka Connect's \
         `ConnectorConfig`, `SourceConnectorConfig` and `SinkConnectorConfig`). Each transform in `transforms` \
         is configured under `transforms.<name>.` (see [transforms.md](transforms.md)), each predicate under \
         `predicates.<name>.` (see [predicates.md](predicates.md)).\n\n## Every connector\n\n",
    );
    out.push_str(&only(&source, &sink, true).to_markdown());
    for (title, def, other) in [("Source connectors also", &source, &sink), ("Sink connectors also", &sink, &source)] {
        let extra = only(def, other, false);
        if !extra.keys().is_empty() {
            out.push_str(&format!("\n## {title}\n\n{}", extra.to_markdown()));
        }
    }
    out
}

/// One section of the transforms or predicates page: a plugin under every name it has, and its key tables
/// (one when its `$Key` and `$Value` variants take the same keys).
struct Section {
    heading: String,
    names: Vec<String>,
    /// (class, Markdown table)
    tables: Vec<(String, String)>,
}

/// Sections of plugins grouped by class without `$Key`/`$Value`.
fn sections<'a>(plugins: impl Iterator<Item = (&'a str, &'a [&'a str], ConfigDef)>) -> String {
    let mut groups: Vec<Section> = Vec::new();
    for (class, aliases, def) in plugins {
        let base = class.strip_suffix("$Key").or_else(|| class.strip_suffix("$Value")).unwrap_or(class);
        let heading = simple_name(base).to_string();
        let table = def.to_markdown();
        let mut names = vec![class.to_string()];
        names.extend(aliases.iter().map(|a| a.to_string()));
        match groups.iter_mut().find(|g| g.heading == heading) {
            Some(group) => {
                group.names.extend(names);
                if !group.tables.iter().any(|(_, t)| *t == table) {
                    group.tables.push((class.to_string(), table));
                }
            }
            None => groups.push(Section { heading, names, tables: vec![(class.to_string(), table)] }),
        }
    }
    let mut out = String::new();
    for Section { heading, names, tables } in groups {
        out.push_str(&format!("\n## {heading}\n\nType: {}.\n", code_list(&names)));
        let single = tables.len() == 1;
        for (class, table) in tables {
            if !single {
                out.push_str(&format!("\nKeys of `{class}`:\n"));
            }
            out.push('\n');
            out.push_str(if table.lines().count() <= 2 { "No keys.\n" } else { &table });
        }
    }
    out
}

fn transforms_page(registry: &Registry) -> String {
    let mut out = header("Transforms");
    out.push_str(
        "Single message transforms, set in a connector config as in Kafka Connect: `transforms=a,b`, then \
         `transforms.a.type=` one of the names below and its keys under `transforms.a.`; every transform also \
         takes `predicate` (the name of one in `predicates`) and `negate`. `$Key`/`$Value` variants share one \
         section when their keys are the same.\n",
    );
    out.push_str(&sections(registry.transformations.iter().map(|p| (p.class, p.aliases, (p.create)().config_def()))));
    out
}

fn predicates_page(registry: &Registry) -> String {
    let mut out = header("Predicates");
    out.push_str(
        "Predicates decide which records a transform applies to: `predicates=p`, `predicates.p.type=` one of \
         the names below, its keys under `predicates.p.`, and `transforms.a.predicate=p` (with \
         `transforms.a.negate=true` to invert it).\n",
    );
    out.push_str(&sections(registry.predicates.iter().map(|p| (p.class, p.aliases, (p.create)().config_def()))));
    out
}

fn index_page(registry: &Registry, connectors: &[&ConnectorPlugin]) -> String {
    let mut out = header("Plugin reference");
    out.push_str(&format!(
        "Every key of every plugin this build carries, generated from the code. After changing a plugin's \
         config, regenerate from the repository root with\n\n```sh\n{REGENERATE}\n```\n\n\
         (or `connect plugins --docs docs/connectors`); a test (`cargo test -p connect-worker committed_plugin_docs`) \
         fails while the committed files differ from what the code generates.\n\n\
         ## Connectors\n\n| connector | type | class |\n|---|---|---|\n"
    ));
    for plugin in connectors {
        let short = short_name(plugin);
        out.push_str(&format!("| [{short}]({short}.md) | {} | `{}` |\n", plugin.kind.as_str(), markdown_cell(plugin.class)));
    }
    let documented: Vec<&str> = connectors.iter().map(|p| p.class).collect();
    let left_out: Vec<String> =
        registry.connectors.iter().filter(|p| !documented.contains(&p.class)).map(|p| simple_name(p.class).to_string()).collect();
    if !left_out.is_empty() {
        out.push_str(&format!(
            "\nLeft out: {}, connectors for testing the runtime's failure handling (connect-testing).\n",
            code_list(&left_out)
        ));
    }
    out.push_str(
        "\n## Everything else\n\n\
         - [Keys every connector takes](common.md): `name`, `tasks.max`, converters, transforms, predicates, error handling, `topics`\n\
         - [Transforms](transforms.md)\n\
         - [Predicates](predicates.md)\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_lower_case_aliases_or_kebab_class_names() {
        let r = Registry::default();
        let names: Vec<String> = documented_connectors(&r).into_iter().map(short_name).collect();
        assert!(names.contains(&"file-source".to_string()), "{names:?}");
        assert!(names.contains(&"postgres-sink".to_string()), "{names:?}");
        let plugin = ConnectorPlugin {
            class: "com.example.HttpSinkConnector",
            aliases: &["HttpSink"],
            kind: ConnectorType::Sink,
            version: "1",
            create: || unreachable!(),
        };
        assert_eq!(short_name(&plugin), "http-sink");
    }

    #[test]
    fn test_only_connectors_are_left_out() {
        let r = Registry::default();
        let pages = render(&r);
        assert!(pages.keys().all(|p| !p.to_ascii_lowercase().contains("flaky")), "{:?}", pages.keys());
        assert_eq!(pages.len(), documented_connectors(&r).len() + 4);
        assert!(pages["README.md"].contains("Left out: `FlakySourceConnector`") || pages["README.md"].contains("Left out: `FlakySource"));
    }

    #[test]
    fn write_replaces_stale_generated_pages_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gone-source.md"), format!("# gone-source\n\n{MARKER}\n")).unwrap();
        std::fs::write(dir.path().join("notes.md"), "# hand-written\n").unwrap();
        let written = write(&Registry::default(), dir.path()).unwrap();
        assert!(written.iter().any(|p| p.ends_with("README.md")));
        assert!(!dir.path().join("gone-source.md").exists());
        assert!(dir.path().join("notes.md").exists());
    }

    /// The committed reference is what the code generates: fails after a plugin's config changed (or a
    /// connector was added or removed) until the docs are regenerated.
    #[test]
    fn committed_plugin_docs_match_the_code() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(DOCS_DIR);
        let pages = render(&Registry::default());
        let mut problems = Vec::new();
        for (name, content) in &pages {
            match std::fs::read_to_string(dir.join(name)) {
                Ok(committed) if committed == *content => {}
                Ok(_) => problems.push(format!("{name} differs")),
                Err(_) => problems.push(format!("{name} is missing")),
            }
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.ends_with(".md") && !pages.contains_key(&name) {
                problems.push(format!("{name} is not generated (the regeneration removes it if it once was; else move it)"));
            }
        }
        assert!(
            problems.is_empty(),
            "{DOCS_DIR} is out of date with the plugins' ConfigDefs: {}.\nRegenerate it from the repository root with\n    {REGENERATE}\nand commit the result.",
            problems.join("; ")
        );
    }
}
