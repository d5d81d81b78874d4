//! Manifest YAML → the Kubernetes objects it declares ([`ObjectRef`]).
//!
//! Every document must be an object K3s can apply: a mapping with `apiVersion`, `kind` and
//! `metadata.name`; a `kind: List` expands to its `items`. Empty documents (only comments or
//! `---`) are skipped, as K3s does. Refusing here, on the device, before anything is written to
//! K3s's directory, turns a typo into an error naming the file instead of an AddOn that fails
//! to apply every 15 seconds.
//!
//! The parser input is bounded twice before a tree is built: nesting deeper than
//! [`MAX_DEPTH`] (a 4 MiB `[[[[...` would otherwise overflow the stack when the tree is
//! dropped) and alias expansion past [`MAX_NODES`] (the "billion laughs" document: the
//! loader clones an anchored node at every alias).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
use yaml_rust2::{Yaml, YamlLoader};

use crate::error::ArchiveError;

/// Deepest nesting of sequences and mappings accepted.
pub const MAX_DEPTH: usize = 128;

/// Most nodes a manifest may hold once aliases are expanded.
pub const MAX_NODES: u64 = 2_000_000;

/// One Kubernetes object a manifest declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// `None` when the manifest leaves it to the default (`default` for namespaced kinds) or
    /// the kind is cluster-scoped.
    pub namespace: Option<String>,
    pub name: String,
}

/// The workload kinds whose rollout tells whether a revision is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    DaemonSet,
    StatefulSet,
}

impl WorkloadKind {
    /// The Kubernetes kind.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::StatefulSet => "StatefulSet",
        }
    }
}

/// A workload to wait for, with its namespace resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    /// The object as a workload for readiness checks: `apps/v1` Deployments, DaemonSets and
    /// StatefulSets; a missing namespace is `default`, where the API server puts it.
    pub fn workload(&self) -> Option<Workload> {
        if self.api_version != "apps/v1" {
            return None;
        }
        let kind = match self.kind.as_str() {
            "Deployment" => WorkloadKind::Deployment,
            "DaemonSet" => WorkloadKind::DaemonSet,
            "StatefulSet" => WorkloadKind::StatefulSet,
            _ => return None,
        };
        Some(Workload {
            kind,
            namespace: self
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
            name: self.name.clone(),
        })
    }
}

/// Parses a manifest (multi-document YAML; JSON is YAML) into its objects.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Vec<ObjectRef>, ArchiveError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ArchiveError::NotUtf8 {
        file: file.to_owned(),
    })?;
    // A UTF-8 byte order mark is legal at the start of a YAML stream.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_bounds(file, text)?;
    let docs =
        YamlLoader::load_from_str(text).map_err(|e| yaml_error(file, e.marker(), e.info()))?;
    let mut objects = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let document = i + 1;
        let refuse = |reason: String| ArchiveError::Object {
            file: file.to_owned(),
            document,
            reason,
        };
        // An empty document (comments only, or a bare `---`) is an empty object set.
        if doc.is_badvalue() || doc.is_null() {
            continue;
        }
        let obj = object(doc).map_err(refuse)?;
        if obj.kind == "List" {
            let items = doc["items"]
                .as_vec()
                .ok_or_else(|| refuse("kind List without an items sequence".to_owned()))?;
            for (j, item) in items.iter().enumerate() {
                let obj = object(item).map_err(|r| refuse(format!("items[{j}]: {r}")))?;
                if obj.kind == "List" {
                    return Err(refuse(format!("items[{j}]: a List inside a List")));
                }
                objects.push(obj);
            }
        } else {
            objects.push(obj);
        }
    }
    Ok(objects)
}

fn object(doc: &Yaml) -> Result<ObjectRef, String> {
    if !doc.is_hash() {
        return Err("not a mapping (a Kubernetes object)".to_owned());
    }
    let field = |value: &Yaml, what: &str| -> Result<String, String> {
        match value.as_str() {
            Some(s) if !s.is_empty() => Ok(s.to_owned()),
            _ => Err(format!("{what} is missing or not a non-empty string")),
        }
    };
    let kind = field(&doc["kind"], "kind")?;
    let api_version = field(&doc["apiVersion"], "apiVersion")?;
    // A List itself carries no metadata.name.
    let (name, namespace) = if kind == "List" {
        (String::new(), None)
    } else {
        let meta = &doc["metadata"];
        let name = field(&meta["name"], "metadata.name")?;
        let namespace = match &meta["namespace"] {
            Yaml::BadValue | Yaml::Null => None,
            ns => Some(field(ns, "metadata.namespace")?),
        };
        (name, namespace)
    };
    Ok(ObjectRef {
        api_version,
        kind,
        namespace,
        name,
    })
}

fn yaml_error(file: &str, mark: &Marker, message: &str) -> ArchiveError {
    ArchiveError::Yaml {
        file: file.to_owned(),
        line: mark.line(),
        column: mark.col() + 1,
        message: message.to_owned(),
    }
}

/// First pass over the event stream, building nothing: syntax errors, depth and expansion.
/// Events are pulled one by one because `Parser::load` recurses once per nesting level.
fn check_bounds(file: &str, text: &str) -> Result<(), ArchiveError> {
    let mut parser = Parser::new_from_str(text);
    let mut guard = Guard::default();
    loop {
        let (ev, mark) = parser
            .next_token()
            .map_err(|e| yaml_error(file, e.marker(), e.info()))?;
        if ev == Event::StreamEnd {
            return Ok(());
        }
        guard.on_event(ev, mark);
        if let Some((mark, message)) = guard.refused {
            return Err(yaml_error(file, &mark, message));
        }
    }
}

#[derive(Default)]
struct Guard {
    /// Open collections: (anchor id, node count when opened).
    open: Vec<(usize, u64)>,
    /// Nodes so far, aliases counted as the size of what they refer to.
    nodes: u64,
    /// Expanded size of each anchored node.
    anchors: HashMap<usize, u64>,
    refused: Option<(Marker, &'static str)>,
}

impl MarkedEventReceiver for Guard {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.refused.is_some() {
            return;
        }
        match ev {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.open.push((anchor, self.nodes));
                self.nodes += 1;
                if self.open.len() > MAX_DEPTH {
                    self.refused = Some((mark, "nested deeper than 128 levels"));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, start)) = self.open.pop() {
                    if anchor != 0 {
                        self.anchors.insert(anchor, self.nodes - start);
                    }
                }
            }
            Event::Scalar(_, _, anchor, _) => {
                self.nodes += 1;
                if anchor != 0 {
                    self.anchors.insert(anchor, 1);
                }
            }
            Event::Alias(anchor) => {
                let size = self.anchors.get(&anchor).copied().unwrap_or(1);
                self.nodes = self.nodes.saturating_add(size);
            }
            _ => {}
        }
        if self.nodes > MAX_NODES {
            self.refused = Some((mark, "aliases expand to more than 2000000 nodes"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(api: &str, kind: &str, ns: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api.into(),
            kind: kind.into(),
            namespace: ns.map(Into::into),
            name: name.into(),
        }
    }

    #[test]
    fn multi_document_and_empty_documents() {
        let y = b"# header\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: apps\n---\n# nothing\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n";
        let got = parse("x.yaml", y).unwrap();
        assert_eq!(
            got,
            vec![
                obj("v1", "ConfigMap", Some("apps"), "a"),
                obj("apps/v1", "Deployment", None, "web")
            ]
        );
        let w = got[1].workload().unwrap();
        assert_eq!(w.namespace, "default");
        assert_eq!(w.kind, WorkloadKind::Deployment);
        assert!(got[0].workload().is_none());
    }

    #[test]
    fn empty_file_is_empty_set() {
        assert!(parse("x.yaml", b"").unwrap().is_empty());
        assert!(parse("x.yaml", b"# removed\n---\n").unwrap().is_empty());
    }

    #[test]
    fn json_and_list() {
        let j = br#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db","namespace":"data"}},{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"data"}}]}"#;
        let got = parse("x.json", j).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].workload().unwrap(),
            Workload {
                kind: WorkloadKind::StatefulSet,
                namespace: "data".into(),
                name: "db".into()
            }
        );
    }

    #[test]
    fn refusals() {
        let cases: &[&[u8]] = &[
            b"apiVersion: v1\nmetadata: {name: a}\n",
            b"apiVersion: v1\nkind: ConfigMap\n",
            b"kind: ConfigMap\nmetadata: {name: a}\n",
            b"- a\n- b\n",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x]}\n",
            b"apiVersion: v1\nkind: List\nitems: [{kind: X}]\n",
        ];
        for c in cases {
            let e = parse("x.yaml", c).unwrap_err();
            assert!(matches!(e, ArchiveError::Object { .. }), "{e}");
        }
    }

    #[test]
    fn broken_yaml_names_line() {
        let e = parse(
            "bad.yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [a\n",
        )
        .unwrap_err();
        match e {
            ArchiveError::Yaml { file, line, .. } => {
                assert_eq!(file, "bad.yaml");
                assert!(line >= 4, "line {line}");
            }
            other => panic!("{other}"),
        }
        let e = parse("dup.yaml", b"a: 1\na: 2\n").unwrap_err();
        assert!(matches!(e, ArchiveError::Yaml { line: 2, .. }), "{e}");
        assert!(matches!(
            parse("x.yaml", &[0xff, 0xfe]),
            Err(ArchiveError::NotUtf8 { .. })
        ));
    }

    #[test]
    fn bounds() {
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse("x.yaml", deep.as_bytes()),
            Err(ArchiveError::Yaml { .. })
        ));
        let dashes = "- ".repeat(100_000) + "x\n";
        assert!(matches!(
            parse("x.yaml", dashes.as_bytes()),
            Err(ArchiveError::Yaml { .. })
        ));
        let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            laughs.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse("x.yaml", laughs.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("aliases"), "{e}");
    }
}
