//! `networking.k8s.io/v1` IngressClass: a named class of Ingresses and the controller that
//! serves it. The coordinator's admission gives a new Ingress that names no class the
//! default one (the class marked `ingressclass.kubernetes.io/is-default-class: "true"`, the
//! newest if several are), as Kubernetes' DefaultIngressClass plugin does. skiff's agents
//! serve Ingresses by class *name* (`--ingress-class`, default `skiff`), whatever
//! controller the class names.

use crate::k8s_struct;
use crate::meta::ObjectMeta;
use crate::print::{age, Page, Print};
use crate::resource::{NameRule, Resource};
use crate::validate::{dns1123_subdomain_problem, Problems};

/// The annotation that marks the default class.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The longest `spec.controller` Kubernetes takes.
pub const MAX_CONTROLLER_LEN: usize = 250;

/// The values of `spec.parameters.scope`.
pub const SCOPES: [&str; 2] = ["Cluster", "Namespace"];

k8s_struct! {
    /// `networkingv1.IngressClass`.
    pub struct IngressClass {
        /// `networking.k8s.io/v1`.
        pub api_version: String,
        /// `IngressClass`.
        pub kind: String,
        /// Standard metadata.
        pub metadata: ObjectMeta,
        pub spec: IngressClassSpec,
    }
}

k8s_struct! {
    /// `networkingv1.IngressClassSpec`.
    pub struct IngressClassSpec {
        /// The controller that serves the class (`acme.io/ingress-controller`); immutable.
        pub controller: Option<String>,
        /// A resource holding the controller's configuration for the class.
        pub parameters: Option<IngressClassParametersReference>,
    }
}

k8s_struct! {
    /// `networkingv1.IngressClassParametersReference`.
    pub struct IngressClassParametersReference {
        pub api_group: Option<String>,
        pub kind: String,
        pub name: String,
        /// `Cluster` (the default) or `Namespace`.
        pub scope: Option<String>,
        pub namespace: Option<String>,
    }
}

impl IngressClass {
    /// Whether the class is the default for Ingresses that name none.
    pub fn is_default(&self) -> bool {
        self.metadata
            .annotations
            .get(DEFAULT_CLASS_ANNOTATION)
            .is_some_and(|v| v == "true")
    }
}

/// Kubernetes' `IsDomainPrefixedPath`: a DNS subdomain, `/`, and an HTTP path.
fn domain_prefixed_path_problem(v: &mut Problems, path: &str, value: &str) {
    let Some((host, rest)) = value
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        v.invalid(
            path,
            format!("{value:?}"),
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        );
        return;
    };
    if let Some(why) = dns1123_subdomain_problem(host) {
        v.invalid(path, format!("{host:?}"), &why);
    }
    if !rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&b))
    {
        v.invalid(
            path,
            format!("{rest:?}"),
            "must be a valid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')",
        );
    }
}

impl Resource for IngressClass {
    const NAME: NameRule = NameRule::Subdomain;

    fn default_fields(&mut self) {
        if let Some(p) = &mut self.spec.parameters {
            if p.scope.is_none() {
                p.scope = Some("Cluster".into());
            }
        }
    }

    fn validate(&self, v: &mut Problems) {
        match self.spec.controller.as_deref().unwrap_or("") {
            "" => v.required("spec.controller"),
            c if c.len() > MAX_CONTROLLER_LEN => v.push(
                "spec.controller",
                format!("Too long: may not be more than {MAX_CONTROLLER_LEN} bytes"),
            ),
            c => domain_prefixed_path_problem(v, "spec.controller", c),
        }
        let Some(p) = &self.spec.parameters else {
            return;
        };
        if p.kind.is_empty() {
            v.required("spec.parameters.kind");
        }
        if p.name.is_empty() {
            v.required("spec.parameters.name");
        }
        v.one_of("spec.parameters.scope", &p.scope, &SCOPES);
        // An absent scope is `Cluster` (the default).
        match (
            p.scope.as_deref().unwrap_or("Cluster"),
            p.namespace.as_deref(),
        ) {
            ("Namespace", None | Some("")) => v.push(
                "spec.parameters.namespace",
                "Required value: `parameters.scope` is set to 'Namespace'".into(),
            ),
            ("Cluster", Some(ns)) if !ns.is_empty() => v.push(
                "spec.parameters.namespace",
                "Forbidden: `parameters.scope` is set to 'Cluster'".into(),
            ),
            _ => {}
        }
    }

    fn validate_update(&self, old: &Self, v: &mut Problems) {
        if self.spec.controller != old.spec.controller {
            v.invalid(
                "spec.controller",
                format!("{:?}", self.spec.controller.as_deref().unwrap_or("")),
                "field is immutable",
            );
        }
    }
}

impl Print for IngressClass {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
    }

    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        // As kubectl: `Kind[.apiGroup]/name`, or `<none>`.
        let parameters = match &self.spec.parameters {
            None => "<none>".to_string(),
            Some(p) => match p.api_group.as_deref() {
                Some(g) => format!("{}.{g}/{}", p.kind, p.name),
                None => format!("{}/{}", p.kind, p.name),
            },
        };
        vec![
            self.metadata.name().to_string(),
            self.spec.controller.clone().unwrap_or_default(),
            parameters,
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }

    fn describe(&self, page: &mut Page) {
        page.field(
            0,
            "Controller",
            self.spec.controller.as_deref().unwrap_or(""),
        );
        match &self.spec.parameters {
            None => page.field(0, "Parameters", "<none>"),
            Some(p) => {
                page.field(0, "Parameters", "");
                page.field(1, "APIGroup", p.api_group.as_deref().unwrap_or(""));
                page.field(1, "Kind", &p.kind);
                page.field(1, "Name", &p.name);
                page.field(1, "Scope", p.scope.as_deref().unwrap_or(""));
                if let Some(ns) = &p.namespace {
                    page.field(1, "Namespace", ns);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::parse_manifests;
    use crate::object::{Kind, Object};

    /// The Kubernetes docs' IngressClass (`service/networking/external-lb.yaml`).
    const EXTERNAL_LB: &str = "apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: external-lb
spec:
  controller: example.com/ingress-controller
  parameters:
    apiGroup: k8s.example.com
    kind: IngressParameters
    name: external-lb
";

    #[test]
    fn the_docs_class_is_read_defaulted_and_printed() {
        let m = parse_manifests(EXTERNAL_LB).unwrap_or_else(|e| panic!("{e}"));
        assert!(m[0].warnings.is_empty(), "{:?}", m[0].warnings);
        let Object::IngressClass(c) = &m[0].object else {
            panic!("{:?}", m[0].object)
        };
        let mut c = c.clone();
        crate::resource::Resource::default_fields(&mut c);
        assert_eq!(
            c.spec.parameters.as_ref().unwrap().scope.as_deref(),
            Some("Cluster")
        );
        assert!(!c.is_default());
        use crate::print::Print;
        assert_eq!(
            c.row(false, 0)[..3],
            [
                "external-lb",
                "example.com/ingress-controller",
                "IngressParameters.k8s.example.com/external-lb"
            ]
        );
        assert_eq!(Kind::from_name("ingressclass"), Some(Kind::IngressClass));
        assert_eq!(Kind::from_name("ingressclasses"), Some(Kind::IngressClass));
    }

    #[test]
    fn bad_classes_name_the_field() {
        let cases = [
            ("  controller: example.com/ingress-controller\n", "", ""),
            ("  controller: \"\"\n", "spec.controller: Required value", ""),
            (
                "  controller: ingress-controller\n",
                "spec.controller: Invalid value: \"ingress-controller\": must be a domain-prefixed path",
                "",
            ),
            (
                "  controller: Example.com/x\n",
                "spec.controller: Invalid value: \"Example.com\"",
                "",
            ),
            (
                "  controller: example.com/x\n  parameters: {kind: P, name: p, scope: Namespace}\n",
                "spec.parameters.namespace: Required value",
                "",
            ),
            (
                "  controller: example.com/x\n  parameters: {kind: P, name: p, namespace: default}\n",
                "spec.parameters.namespace: Forbidden",
                "",
            ),
            (
                "  controller: example.com/x\n  parameters: {kind: P, name: p, scope: Global}\n",
                "spec.parameters.scope: Unsupported value: \"Global\"",
                "",
            ),
        ];
        for (spec, want, _) in cases {
            let doc = format!(
                "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {{name: c}}\nspec:\n{spec}"
            );
            match parse_manifests(&doc) {
                Ok(_) if want.is_empty() => {}
                Ok(_) => panic!("{spec:?} was taken; wanted {want:?}"),
                Err(e) => assert!(
                    !want.is_empty() && e.to_string().contains(want),
                    "{spec:?}: {e}"
                ),
            }
        }
    }

    #[test]
    fn the_controller_is_immutable() {
        let a = parse_manifests(EXTERNAL_LB).unwrap().remove(0).object;
        let b = parse_manifests(&EXTERNAL_LB.replace("example.com/ingress", "other.io/ingress"))
            .unwrap()
            .remove(0)
            .object;
        let errs = crate::validate::validate_update(&a, &b);
        assert!(
            errs.iter()
                .any(|e| e.path == "spec.controller" && e.message.contains("field is immutable")),
            "{errs:?}"
        );
    }
}
