//! Who pods run as and what identities may do: `v1` ServiceAccount and the RBAC kinds
//! (`rbac.authorization.k8s.io/v1` Role, ClusterRole, RoleBinding, ClusterRoleBinding).
//! Every namespace has a `default` ServiceAccount (the coordinator creates it), and a pod
//! runs as the one its `serviceAccountName` names (admission defaults it and refuses one
//! that does not exist). The RBAC kinds are validated and stored as Kubernetes does, but
//! not enforced: applying them warns so.

use crate::k8s_struct;
use crate::meta::ObjectMeta;
use crate::pod::LocalObjectReference;
use crate::print::{age, Page, Print};
use crate::resource::{NameRule, Resource};
use crate::validate::Problems;

/// What applying an RBAC object warns: it is kept, and grants nothing.
pub const RBAC_NOT_ENFORCED: &str = "RBAC is stored but not enforced by skiff: the admin certificate may do anything, a node only what the node authorizer allows, and a ServiceAccount token grants nothing beyond discovery";

k8s_struct! {
    /// `corev1.ServiceAccount`.
    pub struct ServiceAccount {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        /// Secrets pods of this account may use (legacy token Secrets).
        pub secrets: Vec<ObjectReference>,
        /// Registry credentials added to the pods that run as this account.
        pub image_pull_secrets: Vec<LocalObjectReference>,
        /// Whether pods get the account's token mounted unless they say otherwise.
        pub automount_service_account_token: Option<bool>,
    }
}

k8s_struct! {
    /// `corev1.ObjectReference`, as a ServiceAccount's `secrets` hold it.
    pub struct ObjectReference {
        pub kind: Option<String>,
        pub namespace: Option<String>,
        pub name: Option<String>,
        pub uid: Option<String>,
        pub api_version: Option<String>,
        pub resource_version: Option<String>,
        pub field_path: Option<String>,
    }
}

impl Resource for ServiceAccount {
    const NAME: NameRule = NameRule::Subdomain;
    fn default_fields(&mut self) {}
    fn validate(&self, v: &mut Problems) {
        if self.automount_service_account_token.is_some() {
            v.no_effect(
                "automountServiceAccountToken",
                "skiff mounts no ServiceAccount token into pods yet",
            );
        }
    }
    fn validate_update(&self, _old: &Self, _v: &mut Problems) {}
}

impl Print for ServiceAccount {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec!["NAME", "SECRETS", "AGE"]
    }

    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        vec![
            self.metadata.name().to_string(),
            self.secrets.len().to_string(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }

    fn describe(&self, page: &mut Page) {
        let names = |v: Vec<&str>| match v.is_empty() {
            true => "<none>".to_string(),
            false => v.join(", "),
        };
        let pulls = self
            .image_pull_secrets
            .iter()
            .filter_map(|r| r.name.as_deref())
            .collect();
        page.field(0, "Image pull secrets", &names(pulls));
        let mountable = self
            .secrets
            .iter()
            .filter_map(|r| r.name.as_deref())
            .collect();
        page.field(0, "Mountable secrets", &names(mountable));
        page.field(0, "Tokens", "<none>");
    }
}

k8s_struct! {
    /// `rbacv1.PolicyRule`.
    pub struct PolicyRule {
        pub verbs: Vec<String>,
        pub api_groups: Vec<String>,
        pub resources: Vec<String>,
        pub resource_names: Vec<String>,
        #[serde(rename = "nonResourceURLs")]
        pub non_resource_urls: Vec<String>,
    }
}

k8s_struct! {
    /// `rbacv1.Role`: rules within a namespace.
    pub struct Role {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub rules: Vec<PolicyRule>,
    }
}

k8s_struct! {
    /// `rbacv1.AggregationRule`.
    pub struct AggregationRule {
        pub cluster_role_selectors: Vec<crate::selector::LabelSelector>,
    }
}

k8s_struct! {
    /// `rbacv1.ClusterRole`: rules across the cluster.
    pub struct ClusterRole {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub rules: Vec<PolicyRule>,
        pub aggregation_rule: Option<AggregationRule>,
    }
}

k8s_struct! {
    /// `rbacv1.RoleRef`: the role a binding grants; it may not change.
    pub struct RoleRef {
        pub api_group: String,
        pub kind: String,
        pub name: String,
    }
}

k8s_struct! {
    /// `rbacv1.Subject`: who a binding grants its role to.
    pub struct Subject {
        pub kind: String,
        pub api_group: Option<String>,
        pub name: String,
        pub namespace: Option<String>,
    }
}

k8s_struct! {
    /// `rbacv1.RoleBinding`.
    pub struct RoleBinding {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub subjects: Vec<Subject>,
        pub role_ref: RoleRef,
    }
}

k8s_struct! {
    /// `rbacv1.ClusterRoleBinding`.
    pub struct ClusterRoleBinding {
        pub api_version: String,
        pub kind: String,
        pub metadata: ObjectMeta,
        pub subjects: Vec<Subject>,
        pub role_ref: RoleRef,
    }
}

/// Kubernetes' `ValidatePolicyRule`: verbs always; API groups and resources, or (in a
/// ClusterRole) non-resource URLs.
fn validate_rules(v: &mut Problems, rules: &[PolicyRule], cluster: bool) {
    for (i, r) in rules.iter().enumerate() {
        let p = format!("rules[{i}]");
        if r.verbs.is_empty() {
            v.push(
                &format!("{p}.verbs"),
                "Required value: verbs must contain at least one value".into(),
            );
        }
        if !r.non_resource_urls.is_empty() {
            if !cluster {
                v.invalid(
                    &format!("{p}.nonResourceURLs"),
                    format!("{:?}", r.non_resource_urls),
                    "namespaced rules cannot apply to non-resource URLs",
                );
            }
            if !r.api_groups.is_empty() || !r.resources.is_empty() {
                v.invalid(
                    &format!("{p}.nonResourceURLs"),
                    format!("{:?}", r.non_resource_urls),
                    "rules cannot apply to both regular resources and non-resource URLs",
                );
            }
            continue;
        }
        if r.api_groups.is_empty() {
            v.push(
                &format!("{p}.apiGroups"),
                "Required value: resource rules must supply at least one api group".into(),
            );
        }
        if r.resources.is_empty() {
            v.push(
                &format!("{p}.resources"),
                "Required value: resource rules must supply at least one resource".into(),
            );
        }
    }
    v.no_effect("rules", RBAC_NOT_ENFORCED);
}

/// Kubernetes' `ValidateRoleBinding`: a role reference to a Role or ClusterRole of the
/// RBAC group, and subjects of a known kind.
fn validate_binding(v: &mut Problems, r: &RoleRef, subjects: &[Subject], cluster: bool) {
    if r.api_group != "rbac.authorization.k8s.io" {
        v.unsupported(
            "roleRef.apiGroup",
            &r.api_group,
            &["rbac.authorization.k8s.io"],
        );
    }
    let kinds: &[&str] = if cluster {
        &["ClusterRole"]
    } else {
        &["Role", "ClusterRole"]
    };
    if !kinds.contains(&r.kind.as_str()) {
        v.unsupported("roleRef.kind", &r.kind, kinds);
    }
    if r.name.is_empty() {
        v.required("roleRef.name");
    }
    for (i, s) in subjects.iter().enumerate() {
        let p = format!("subjects[{i}]");
        if s.name.is_empty() {
            v.required(&format!("{p}.name"));
        }
        match s.kind.as_str() {
            "ServiceAccount" => {
                if cluster && s.namespace.as_deref().unwrap_or("").is_empty() {
                    v.required(&format!("{p}.namespace"));
                }
                if let Some(g) = s.api_group.as_deref().filter(|g| !g.is_empty()) {
                    v.unsupported(&format!("{p}.apiGroup"), g, &[""]);
                }
            }
            "User" | "Group" => {
                if s.api_group.as_deref() != Some("rbac.authorization.k8s.io") {
                    v.unsupported(
                        &format!("{p}.apiGroup"),
                        s.api_group.as_deref().unwrap_or(""),
                        &["rbac.authorization.k8s.io"],
                    );
                }
            }
            other => v.unsupported(
                &format!("{p}.kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            ),
        }
    }
    v.no_effect("roleRef", RBAC_NOT_ENFORCED);
}

fn role_ref_immutable(new: &RoleRef, old: &RoleRef, v: &mut Problems) {
    if new != old {
        v.invalid("roleRef", format!("{new:?}"), "cannot change roleRef");
    }
}

/// kubectl's ROLE column: `Kind/name`.
fn role_column(r: &RoleRef) -> String {
    format!("{}/{}", r.kind, r.name)
}

fn describe_rules(page: &mut Page, rules: &[PolicyRule]) {
    page.line("PolicyRule:");
    let rows: Vec<Vec<String>> = rules
        .iter()
        .flat_map(|r| {
            let names = format!("[{}]", r.resource_names.join(" "));
            let verbs = format!("[{}]", r.verbs.join(" "));
            let urls = format!("[{}]", r.non_resource_urls.join(" "));
            let resources: Vec<String> = r
                .resources
                .iter()
                .flat_map(|res| {
                    r.api_groups.iter().map(move |g| match g.as_str() {
                        "" => res.clone(),
                        g => format!("{res}.{g}"),
                    })
                })
                .collect();
            let resources = if resources.is_empty() {
                vec![String::new()]
            } else {
                resources
            };
            resources
                .into_iter()
                .map(move |res| vec![res, urls.clone(), names.clone(), verbs.clone()])
        })
        .collect();
    page.table(
        &["Resources", "Non-Resource URLs", "Resource Names", "Verbs"],
        &rows,
    );
}

fn describe_binding(page: &mut Page, r: &RoleRef, subjects: &[Subject]) {
    page.line("Role:");
    page.field(1, "Kind", &r.kind);
    page.field(1, "Name", &r.name);
    page.line("Subjects:");
    let rows: Vec<Vec<String>> = subjects
        .iter()
        .map(|s| {
            vec![
                s.kind.clone(),
                s.name.clone(),
                s.namespace.clone().unwrap_or_default(),
            ]
        })
        .collect();
    page.table(&["Kind", "Name", "Namespace"], &rows);
}

macro_rules! rbac_kind {
    ($ty:ident, cluster: $cluster:expr, rules) => {
        impl Resource for $ty {
            const NAME: NameRule = NameRule::PathSegment;
            fn default_fields(&mut self) {}
            fn validate(&self, v: &mut Problems) {
                validate_rules(v, &self.rules, $cluster);
            }
            fn validate_update(&self, _old: &Self, _v: &mut Problems) {}
        }

        impl Print for $ty {
            fn columns(_wide: bool) -> Vec<&'static str> {
                vec!["NAME", "CREATED AT"]
            }
            fn row(&self, _wide: bool, _now: u64) -> Vec<String> {
                vec![
                    self.metadata.name().to_string(),
                    self.metadata.creation_timestamp.clone().unwrap_or_default(),
                ]
            }
            fn describe(&self, page: &mut Page) {
                describe_rules(page, &self.rules);
            }
        }
    };
    ($ty:ident, cluster: $cluster:expr, binding) => {
        impl Resource for $ty {
            const NAME: NameRule = NameRule::PathSegment;
            fn default_fields(&mut self) {}
            fn validate(&self, v: &mut Problems) {
                validate_binding(v, &self.role_ref, &self.subjects, $cluster);
            }
            fn validate_update(&self, old: &Self, v: &mut Problems) {
                role_ref_immutable(&self.role_ref, &old.role_ref, v);
            }
        }

        impl Print for $ty {
            fn columns(wide: bool) -> Vec<&'static str> {
                let mut c = vec!["NAME", "ROLE", "AGE"];
                if wide {
                    c.extend(["USERS", "GROUPS", "SERVICEACCOUNTS"]);
                }
                c
            }
            fn row(&self, wide: bool, now: u64) -> Vec<String> {
                let mut r = vec![
                    self.metadata.name().to_string(),
                    role_column(&self.role_ref),
                    age(self.metadata.creation_timestamp.as_deref(), now),
                ];
                if wide {
                    let of = |kind: &str| {
                        self.subjects
                            .iter()
                            .filter(|s| s.kind == kind)
                            .map(|s| match (kind, &s.namespace) {
                                ("ServiceAccount", Some(ns)) => format!("{ns}/{}", s.name),
                                _ => s.name.clone(),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    r.extend([of("User"), of("Group"), of("ServiceAccount")]);
                }
                r
            }
            fn describe(&self, page: &mut Page) {
                describe_binding(page, &self.role_ref, &self.subjects);
            }
        }
    };
}

rbac_kind!(Role, cluster: false, rules);
rbac_kind!(ClusterRole, cluster: true, rules);
rbac_kind!(RoleBinding, cluster: false, binding);
rbac_kind!(ClusterRoleBinding, cluster: true, binding);

#[cfg(test)]
mod tests {
    use crate::manifest::parse_manifests;
    use crate::object::{Kind, Object};
    use crate::print::Print;

    /// The Kubernetes docs' RBAC examples (access-authn-authz/rbac), one of each kind.
    const DOCS: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {namespace: default, name: pod-reader}
rules:
- apiGroups: [\"\"]
  resources: [\"pods\"]
  verbs: [\"get\", \"watch\", \"list\"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: \"system:secret-reader\"}
rules:
- apiGroups: [\"\"]
  resources: [\"secrets\"]
  verbs: [\"get\", \"watch\", \"list\"]
- nonResourceURLs: [\"/healthz\", \"/healthz/*\"]
  verbs: [\"get\", \"post\"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: default}
subjects:
- kind: User
  name: jane
  apiGroup: rbac.authorization.k8s.io
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: read-secrets-global}
subjects:
- kind: ServiceAccount
  name: reader
  namespace: apps
roleRef: {kind: ClusterRole, name: \"system:secret-reader\", apiGroup: rbac.authorization.k8s.io}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: build-robot}
automountServiceAccountToken: false
imagePullSecrets: [{name: myregistrykey}]
";

    #[test]
    fn the_docs_rbac_and_accounts_apply_with_the_warning_and_print() {
        let m = parse_manifests(DOCS).unwrap_or_else(|e| panic!("{e}"));
        let kinds: Vec<Kind> = m.iter().map(|d| d.object.kind()).collect();
        assert_eq!(
            kinds,
            [
                Kind::Role,
                Kind::ClusterRole,
                Kind::RoleBinding,
                Kind::ClusterRoleBinding,
                Kind::ServiceAccount
            ]
        );
        for d in &m[..4] {
            assert!(
                d.warnings
                    .iter()
                    .any(|w| w.contains("RBAC is stored but not enforced")),
                "{:?}",
                d.warnings
            );
        }
        assert!(
            m[4].warnings[0].contains("automountServiceAccountToken"),
            "{:?}",
            m[4].warnings
        );
        let Object::ClusterRoleBinding(b) = &m[3].object else {
            panic!()
        };
        assert_eq!(
            b.row(true, 0),
            [
                "read-secrets-global",
                "ClusterRole/system:secret-reader",
                "<unknown>",
                "",
                "",
                "apps/reader"
            ]
        );
        let Object::ServiceAccount(sa) = &m[4].object else {
            panic!()
        };
        assert_eq!(sa.automount_service_account_token, Some(false));
        assert_eq!(Kind::from_name("sa"), Some(Kind::ServiceAccount));
        assert_eq!(
            Kind::from_name("clusterrolebindings"),
            Some(Kind::ClusterRoleBinding)
        );
    }

    #[test]
    fn bad_rbac_names_the_field() {
        let cases = [
            ("kind: Role\nmetadata: {name: r}\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n", "rules[0].verbs: Required value"),
            ("kind: Role\nmetadata: {name: r}\nrules:\n- nonResourceURLs: [/x]\n  verbs: [get]\n", "rules[0].nonResourceURLs: Invalid value"),
            ("kind: RoleBinding\nmetadata: {name: b}\nroleRef: {kind: Thing, name: x, apiGroup: rbac.authorization.k8s.io}\n", "roleRef.kind: Unsupported value: \"Thing\""),
            ("kind: ClusterRoleBinding\nmetadata: {name: b}\nsubjects: [{kind: ServiceAccount, name: s}]\nroleRef: {kind: ClusterRole, name: x, apiGroup: rbac.authorization.k8s.io}\n", "subjects[0].namespace: Required value"),
            ("kind: ClusterRole\nmetadata: {name: a/b}\n", "metadata.name: Invalid value: \"a/b\": may not contain '/'"),
        ];
        for (doc, want) in cases {
            let doc = format!("apiVersion: rbac.authorization.k8s.io/v1\n{doc}");
            match parse_manifests(&doc) {
                Ok(_) => panic!("{doc:?} was taken; wanted {want:?}"),
                Err(e) => assert!(e.to_string().contains(want), "{doc:?}: {e}"),
            }
        }
    }

    #[test]
    fn a_binding_keeps_its_role() {
        let doc = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b}\nroleRef: {kind: Role, name: a, apiGroup: rbac.authorization.k8s.io}\n";
        let a = parse_manifests(doc).unwrap().remove(0).object;
        let b = parse_manifests(&doc.replace("name: a", "name: z"))
            .unwrap()
            .remove(0)
            .object;
        let errs = crate::validate::validate_update(&a, &b);
        assert!(
            errs.iter()
                .any(|e| e.message.contains("cannot change roleRef")),
            "{errs:?}"
        );
    }
}
