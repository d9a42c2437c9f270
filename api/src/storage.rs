//! Storage: PersistentVolume and PersistentVolumeClaim (`v1`) and StorageClass
//! (`storage.k8s.io/v1`). The coordinator's binder pairs claims with volumes; its
//! built-in provisioner (the `local-path` class, the cluster's default) makes a
//! directory-backed volume on the node where a claim's first pod is scheduled.
//! Volumes are node directories (`hostPath` or `local`), mounted into pods as such.

use crate::k8s_struct;
use crate::meta::{ObjectMeta, ObjectReference};
use crate::pod::{HostPathVolumeSource, NodeSelector, ResourceRequirements};
use crate::quantity::Quantity;
use crate::resource::{NameRule, Resource};
use crate::selector::LabelSelector;
use crate::validate::Problems;
use std::collections::BTreeMap;

/// The provisioner of skiff's built-in class.
pub const LOCAL_PATH_PROVISIONER: &str = "skiff.io/local-path";
/// The built-in class, the cluster's default (as k3s's `local-path`).
pub const LOCAL_PATH_CLASS: &str = "local-path";
/// The annotation that makes a class the default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// The finalizer that keeps a claim while pods use it (in-use protection).
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// The finalizer that keeps a volume while a claim is bound to it.
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
/// The finalizer of a provisioned volume: its node removes the directory, then it.
pub const LOCAL_PATH_CLEANUP: &str = "skiff.io/local-path-cleanup";
/// Set on a provisioned volume: the node whose directory it is.
pub const PROVISIONED_NODE: &str = "skiff.io/provisioned-node";
/// Set on a claim by the scheduler (WaitForFirstConsumer): the node chosen.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Set on a claim once bound by the binder.
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on a volume the provisioner made: by which provisioner.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// A Node annotation: the directory the node keeps `local-path` volumes under.
pub const NODE_LOCAL_PATH_DIR: &str = "skiff.io/local-path-dir";
/// The pod annotation the scheduler writes for each claim volume when it binds the pod:
/// `skiff.io/volume.<volume name>` → the node directory to mount. The pod then carries
/// all its node needs, also to restart it while cut off from the coordinator.
pub const POD_VOLUME_PATH_PREFIX: &str = "skiff.io/volume.";

/// The access modes.
pub const ACCESS_MODES: [&str; 4] = [
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];
const RECLAIM_POLICIES: [&str; 2] = ["Delete", "Retain"];
const BINDING_MODES: [&str; 2] = ["Immediate", "WaitForFirstConsumer"];

k8s_struct! {
    /// `corev1.PersistentVolume`.
    pub struct PersistentVolume {
        /// `v1`.
        pub api_version: String,
        /// `PersistentVolume`.
        pub kind: String,
        /// Standard metadata.
        pub metadata: ObjectMeta,
        /// The volume.
        pub spec: PersistentVolumeSpec,
        /// Its phase.
        pub status: Option<PersistentVolumeStatus>,
    }
}

k8s_struct! {
    /// `corev1.PersistentVolumeSpec` (directory-backed sources only).
    pub struct PersistentVolumeSpec {
        /// `storage`: its size.
        pub capacity: BTreeMap<String, Quantity>,
        /// How it may be mounted.
        pub access_modes: Vec<String>,
        /// The claim it is bound to (the binder's, or set by hand to reserve it).
        pub claim_ref: Option<ObjectReference>,
        /// `Retain` (the default for volumes made by hand) or `Delete`.
        pub persistent_volume_reclaim_policy: Option<String>,
        /// Its class (claims of the class may bind it).
        pub storage_class_name: Option<String>,
        /// `Filesystem` (the only mode skiff serves).
        pub volume_mode: Option<String>,
        /// The nodes that can reach it.
        pub node_affinity: Option<VolumeNodeAffinity>,
        /// A directory on the node.
        pub host_path: Option<HostPathVolumeSource>,
        /// A local directory (requires node affinity).
        pub local: Option<LocalVolumeSource>,
    }
}

k8s_struct! {
    /// `corev1.VolumeNodeAffinity`.
    pub struct VolumeNodeAffinity {
        /// Nodes the volume can be used from.
        pub required: Option<NodeSelector>,
    }
}

k8s_struct! {
    /// `corev1.LocalVolumeSource`.
    pub struct LocalVolumeSource {
        /// The directory's path on the node.
        pub path: String,
        /// Filesystem type (block devices only; skiff serves directories).
        pub fs_type: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.PersistentVolumeStatus`.
    pub struct PersistentVolumeStatus {
        /// `Available`, `Bound`, `Released`, `Failed`.
        pub phase: Option<String>,
        /// Why it is in this phase.
        pub message: Option<String>,
        /// A short reason.
        pub reason: Option<String>,
        /// When the phase last changed.
        pub last_phase_transition_time: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.PersistentVolumeClaim`.
    pub struct PersistentVolumeClaim {
        /// `v1`.
        pub api_version: String,
        /// `PersistentVolumeClaim`.
        pub kind: String,
        /// Standard metadata.
        pub metadata: ObjectMeta,
        /// What is asked for.
        pub spec: PersistentVolumeClaimSpec,
        /// What it got.
        pub status: Option<PersistentVolumeClaimStatus>,
    }
}

k8s_struct! {
    /// `corev1.PersistentVolumeClaimSpec`.
    pub struct PersistentVolumeClaimSpec {
        /// The access modes wanted.
        pub access_modes: Vec<String>,
        /// Volumes it may bind (labels).
        pub selector: Option<LabelSelector>,
        /// `requests.storage`: the least size wanted.
        pub resources: ResourceRequirements,
        /// The volume to bind (by name).
        pub volume_name: Option<String>,
        /// Its class; unset: the default class; `""`: volumes without a class.
        pub storage_class_name: Option<String>,
        /// `Filesystem`.
        pub volume_mode: Option<String>,
    }
}

k8s_struct! {
    /// `corev1.PersistentVolumeClaimStatus`.
    pub struct PersistentVolumeClaimStatus {
        /// `Pending`, `Bound`, `Lost`.
        pub phase: Option<String>,
        /// The bound volume's access modes.
        pub access_modes: Vec<String>,
        /// The bound volume's capacity.
        pub capacity: BTreeMap<String, Quantity>,
    }
}

k8s_struct! {
    /// `storagev1.StorageClass`.
    pub struct StorageClass {
        /// `storage.k8s.io/v1`.
        pub api_version: String,
        /// `StorageClass`.
        pub kind: String,
        /// Standard metadata.
        pub metadata: ObjectMeta,
        /// Who makes its volumes (`skiff.io/local-path`, or one skiff does not run:
        /// claims of such a class bind only volumes made by hand).
        pub provisioner: String,
        /// Provisioner parameters (`local-path`: `nodePath`, the directory on each node).
        pub parameters: BTreeMap<String, String>,
        /// What becomes of its provisioned volumes when released (`Delete` by default).
        pub reclaim_policy: Option<String>,
        /// `Immediate` or `WaitForFirstConsumer`.
        pub volume_binding_mode: Option<String>,
    }
}

impl StorageClass {
    /// The built-in default class.
    pub fn local_path() -> StorageClass {
        let mut sc = StorageClass {
            api_version: "storage.k8s.io/v1".into(),
            kind: "StorageClass".into(),
            provisioner: LOCAL_PATH_PROVISIONER.into(),
            reclaim_policy: Some("Delete".into()),
            volume_binding_mode: Some("WaitForFirstConsumer".into()),
            ..Default::default()
        };
        sc.metadata.name = Some(LOCAL_PATH_CLASS.into());
        sc.metadata
            .annotations
            .insert(DEFAULT_CLASS_ANNOTATION.into(), "true".into());
        sc
    }

    /// Whether claims without a class get this one.
    pub fn is_default(&self) -> bool {
        self.metadata
            .annotations
            .get(DEFAULT_CLASS_ANNOTATION)
            .is_some_and(|v| v == "true")
    }

    /// Whether binding waits for the first pod's node.
    pub fn waits_for_consumer(&self) -> bool {
        self.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer")
    }
}

/// Kubernetes' short form of access modes (`RWO,ROX`).
pub fn access_modes_str(modes: &[String]) -> String {
    modes
        .iter()
        .map(|m| match m.as_str() {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn storage_of(m: &BTreeMap<String, Quantity>) -> Option<&Quantity> {
    m.get("storage")
}

impl PersistentVolume {
    /// Its size in bytes.
    pub fn capacity(&self) -> i64 {
        storage_of(&self.spec.capacity).map_or(0, Quantity::value)
    }

    /// Its phase (`Pending` before the binder saw it).
    pub fn phase(&self) -> &str {
        self.status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending")
    }

    /// The directory it is on the node.
    pub fn path(&self) -> Option<&str> {
        match (&self.spec.host_path, &self.spec.local) {
            (Some(h), _) => Some(&h.path),
            (_, Some(l)) => Some(&l.path),
            _ => None,
        }
    }

    /// Its class (`""` for none).
    pub fn class(&self) -> &str {
        self.spec.storage_class_name.as_deref().unwrap_or("")
    }

    /// The required node terms, if it is reachable from some nodes only.
    pub fn node_terms(&self) -> Option<&[crate::pod::NodeSelectorTerm]> {
        self.spec
            .node_affinity
            .as_ref()?
            .required
            .as_ref()
            .map(|r| r.node_selector_terms.as_slice())
    }

    /// `Retain` unless `Delete`.
    pub fn deletes_when_released(&self) -> bool {
        self.spec.persistent_volume_reclaim_policy.as_deref() == Some("Delete")
    }
}

impl PersistentVolumeClaim {
    /// The size asked for, in bytes.
    pub fn request(&self) -> i64 {
        storage_of(&self.spec.resources.requests).map_or(0, Quantity::value)
    }

    /// Its phase.
    pub fn phase(&self) -> &str {
        self.status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending")
    }

    /// Its class (`""` for none).
    pub fn class(&self) -> &str {
        self.spec.storage_class_name.as_deref().unwrap_or("")
    }

    /// Whether one pod alone may use it.
    pub fn one_pod(&self) -> bool {
        self.spec
            .access_modes
            .iter()
            .any(|m| m == "ReadWriteOncePod")
    }

    /// Whether pods of one node alone may use it (`ReadWriteOnce`, and no mode allowing
    /// more).
    pub fn one_node(&self) -> bool {
        self.spec
            .access_modes
            .iter()
            .all(|m| m == "ReadWriteOnce" || m == "ReadWriteOncePod")
    }
}

/// Whether volume `pv` can serve claim `pvc` (class, modes, size, selector, volume mode;
/// not whether either is already taken).
pub fn volume_fits_claim(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let mode = |m: &Option<String>| m.clone().unwrap_or_else(|| "Filesystem".into());
    pv.class() == pvc.class()
        && pvc
            .spec
            .access_modes
            .iter()
            .all(|m| pv.spec.access_modes.contains(m))
        && pv.capacity() >= pvc.request()
        && mode(&pv.spec.volume_mode) == mode(&pvc.spec.volume_mode)
        && pvc
            .spec
            .selector
            .as_ref()
            .is_none_or(|s| s.matches(&pv.metadata.labels))
}

fn validate_modes(v: &mut Problems, path: &str, modes: &[String]) {
    if modes.is_empty() {
        v.push(
            path,
            "Required value: at least 1 access mode is required".into(),
        );
    }
    for (i, m) in modes.iter().enumerate() {
        if !ACCESS_MODES.contains(&m.as_str()) {
            v.unsupported(&format!("{path}[{i}]"), m, &ACCESS_MODES);
        }
    }
    if modes.len() > 1 && modes.iter().any(|m| m == "ReadWriteOncePod") {
        v.forbidden(path, "may not use ReadWriteOncePod with other access modes");
    }
}

fn validate_volume_mode(v: &mut Problems, path: &str, mode: &Option<String>) {
    match mode.as_deref() {
        None | Some("Filesystem") => {}
        Some("Block") => v.forbidden(
            path,
            "skiff serves volumeMode Filesystem only (raw block devices are not supported)",
        ),
        Some(other) => v.unsupported(path, other, &["Block", "Filesystem"]),
    }
}

fn validate_storage(v: &mut Problems, path: &str, q: Option<&Quantity>) {
    match q {
        None => v.required(path),
        Some(q) if q.value() <= 0 => v.invalid(path, q.as_str(), "must be greater than zero"),
        Some(_) => {}
    }
}

fn validate_dir(v: &mut Problems, path: &str, dir: &str) {
    if !dir.starts_with('/') {
        v.invalid(path, format!("{dir:?}"), "must be an absolute path");
    } else if dir.split('/').any(|s| s == "..") {
        v.invalid(path, format!("{dir:?}"), "must not contain '..'");
    }
}

impl Resource for PersistentVolume {
    const NAME: NameRule = NameRule::Subdomain;

    fn default_fields(&mut self) {
        let s = &mut self.spec;
        if s.persistent_volume_reclaim_policy.is_none() {
            s.persistent_volume_reclaim_policy = Some("Retain".into());
        }
        if s.volume_mode.is_none() {
            s.volume_mode = Some("Filesystem".into());
        }
        if let Some(h) = &mut s.host_path {
            if h.type_.is_none() {
                h.type_ = Some(String::new());
            }
        }
    }

    fn validate(&self, v: &mut Problems) {
        let s = &self.spec;
        validate_storage(v, "spec.capacity", storage_of(&s.capacity));
        for k in s.capacity.keys().filter(|k| *k != "storage") {
            v.unsupported(&format!("spec.capacity[{k}]"), k, &["storage"]);
        }
        validate_modes(v, "spec.accessModes", &s.access_modes);
        match (&s.host_path, &s.local) {
            (None, None) => v.push(
                "spec",
                "Required value: must specify a volume type (skiff serves hostPath and local)"
                    .into(),
            ),
            (Some(_), Some(_)) => {
                v.forbidden("spec.local", "may not specify more than 1 volume type")
            }
            (Some(h), None) => {
                validate_dir(v, "spec.hostPath.path", &h.path);
                let kind = h.type_.as_deref().unwrap_or("");
                if !["", "Directory", "DirectoryOrCreate"].contains(&kind) {
                    v.unsupported(
                        "spec.hostPath.type",
                        kind,
                        &["", "Directory", "DirectoryOrCreate"],
                    );
                }
            }
            (None, Some(l)) => {
                validate_dir(v, "spec.local.path", &l.path);
                if l.fs_type.is_some() {
                    v.no_effect(
                        "spec.local.fsType",
                        "a local volume is a directory here (no block device to format)",
                    );
                }
                if self.node_terms().is_none_or(|t| t.is_empty()) {
                    v.push(
                        "spec.nodeAffinity",
                        "Required value: Local volume requires node affinity".into(),
                    );
                }
            }
        }
        if let Some(na) = &s.node_affinity {
            match &na.required {
                Some(r) if r.node_selector_terms.is_empty() => v.push(
                    "spec.nodeAffinity.required.nodeSelectorTerms",
                    "Required value: must have at least one node selector term".into(),
                ),
                None => v.required("spec.nodeAffinity.required"),
                _ => {}
            }
        }
        v.one_of(
            "spec.persistentVolumeReclaimPolicy",
            &s.persistent_volume_reclaim_policy,
            &RECLAIM_POLICIES,
        );
        validate_volume_mode(v, "spec.volumeMode", &s.volume_mode);
    }

    fn validate_update(&self, old: &Self, v: &mut Problems) {
        let (s, o) = (&self.spec, &old.spec);
        if s.host_path != o.host_path || s.local != o.local {
            v.forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is forbidden to update",
            );
        }
        if s.volume_mode != o.volume_mode {
            v.invalid(
                "spec.volumeMode",
                format!("{:?}", s.volume_mode.as_deref().unwrap_or("")),
                "field is immutable",
            );
        }
        if o.node_affinity.is_some() && s.node_affinity != o.node_affinity {
            v.forbidden("spec.nodeAffinity", "field is immutable");
        }
    }
}

impl Resource for PersistentVolumeClaim {
    const NAME: NameRule = NameRule::Subdomain;

    fn default_fields(&mut self) {
        if self.spec.volume_mode.is_none() {
            self.spec.volume_mode = Some("Filesystem".into());
        }
    }

    fn validate(&self, v: &mut Problems) {
        let s = &self.spec;
        validate_modes(v, "spec.accessModes", &s.access_modes);
        validate_storage(
            v,
            "spec.resources[storage]",
            storage_of(&s.resources.requests),
        );
        if let Some(sel) = &s.selector {
            v.selector("spec.selector", sel);
        }
        if !s.resources.limits.is_empty() {
            v.no_effect(
                "spec.resources.limits",
                "a claim's size is its request; skiff does not cap or resize volumes",
            );
        }
        validate_volume_mode(v, "spec.volumeMode", &s.volume_mode);
    }

    fn validate_update(&self, old: &Self, v: &mut Problems) {
        let (mut s, o) = (self.spec.clone(), &old.spec);
        // What the binder and the default class fill in once.
        if o.volume_name.is_none() {
            s.volume_name = None;
        }
        if o.storage_class_name.is_none() {
            s.storage_class_name = None;
        }
        if s != *o {
            v.forbidden(
                "spec",
                "spec is immutable after creation (skiff does not resize volumes)",
            );
        }
    }
}

impl Resource for StorageClass {
    const NAME: NameRule = NameRule::Subdomain;

    fn default_fields(&mut self) {
        if self.reclaim_policy.is_none() {
            self.reclaim_policy = Some("Delete".into());
        }
        if self.volume_binding_mode.is_none() {
            self.volume_binding_mode = Some("Immediate".into());
        }
    }

    fn validate(&self, v: &mut Problems) {
        if self.provisioner.is_empty() {
            v.required("provisioner");
        }
        v.one_of("reclaimPolicy", &self.reclaim_policy, &RECLAIM_POLICIES);
        v.one_of(
            "volumeBindingMode",
            &self.volume_binding_mode,
            &BINDING_MODES,
        );
        if self.provisioner == LOCAL_PATH_PROVISIONER {
            for (k, val) in &self.parameters {
                match k.as_str() {
                    "nodePath" => validate_dir(v, "parameters.nodePath", val),
                    _ => v.unsupported(&format!("parameters[{k}]"), k, &["nodePath"]),
                }
            }
            if !self.waits_for_consumer() {
                v.unsupported(
                    "volumeBindingMode",
                    self.volume_binding_mode.as_deref().unwrap_or(""),
                    &["WaitForFirstConsumer"],
                );
            }
        }
    }

    fn validate_update(&self, old: &Self, v: &mut Problems) {
        if self.provisioner != old.provisioner {
            v.forbidden("provisioner", "updates to provisioner are forbidden.");
        }
        if self.parameters != old.parameters {
            v.forbidden("parameters", "updates to parameters are forbidden.");
        }
        if self.reclaim_policy != old.reclaim_policy {
            v.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden.");
        }
        if self.volume_binding_mode != old.volume_binding_mode {
            v.forbidden("volumeBindingMode", "field is immutable");
        }
    }
}

/// Whether a volume provisioned on some node is being deleted and still waits for that
/// node to remove its directory.
pub fn awaits_cleanup(pv: &PersistentVolume) -> bool {
    pv.metadata.deletion_timestamp.is_some()
        && pv.metadata.annotations.contains_key(PROVISIONED_NODE)
        && pv
            .metadata
            .finalizers
            .iter()
            .any(|f| f == LOCAL_PATH_CLEANUP)
}

/// The claim a StatefulSet's pod `<set>-<ordinal>` has from template `template`.
pub fn claim_name(template: &str, pod: &str) -> String {
    format!("{template}-{pod}")
}

/// Gives a StatefulSet's pod a volume per claim template (replacing a volume of the
/// same name, as Kubernetes does): its claim is [`claim_name`] of the pod's name `pod`.
pub fn add_claim_volumes(
    spec: &mut crate::pod::PodSpec,
    templates: &[PersistentVolumeClaim],
    pod: &str,
) {
    for t in templates {
        let name = t.metadata.name().to_string();
        spec.volumes.retain(|v| v.name != name);
        spec.volumes.push(crate::pod::Volume {
            persistent_volume_claim: Some(crate::pod::PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&name, pod),
                read_only: None,
            }),
            name,
            ..Default::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_manifests;
    use crate::object::{Kind, Object};

    const PV: &str = "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: task-pv-volume\n  labels:\n    type: local\nspec:\n  storageClassName: manual\n  capacity:\n    storage: 10Gi\n  accessModes:\n    - ReadWriteOnce\n  hostPath:\n    path: \"/mnt/data\"\n";
    const PVC: &str = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: task-pv-claim\nspec:\n  storageClassName: manual\n  accessModes:\n    - ReadWriteOnce\n  resources:\n    requests:\n      storage: 3Gi\n";

    fn one(text: &str) -> Object {
        parse_manifests(text).unwrap().remove(0).object
    }

    fn errors(text: &str) -> String {
        parse_manifests(text).unwrap_err().errors.join("\n")
    }

    #[test]
    fn the_documentation_volume_and_claim_apply_print_and_fit() {
        let mut pv = one(PV);
        pv.default_fields();
        assert_eq!(pv.kind(), Kind::PersistentVolume);
        assert_eq!(Kind::from_name("pv"), Some(Kind::PersistentVolume));
        assert_eq!(Kind::from_name("pvc"), Some(Kind::PersistentVolumeClaim));
        assert_eq!(Kind::from_name("sc"), Some(Kind::StorageClass));
        assert_eq!(
            pv.row(false, 0)[..7],
            [
                "task-pv-volume",
                "10Gi",
                "RWO",
                "Retain",
                "Pending",
                "",
                "manual"
            ]
        );
        let pvc = one(PVC);
        assert_eq!(
            pvc.row(false, 0)[..6],
            ["task-pv-claim", "Pending", "", "", "", "manual"]
        );
        let (Object::PersistentVolume(v), Object::PersistentVolumeClaim(c)) = (&pv, &pvc) else {
            panic!()
        };
        assert!(volume_fits_claim(v, c));
        let mut big = c.clone();
        big.spec
            .resources
            .requests
            .insert("storage".into(), Quantity::parse("20Gi").unwrap());
        assert!(!volume_fits_claim(v, &big), "too small");
        let mut other = c.clone();
        other.spec.storage_class_name = Some(String::new());
        assert!(!volume_fits_claim(v, &other), "another class");
        let mut many = c.clone();
        many.spec.access_modes = vec!["ReadWriteMany".into()];
        assert!(!volume_fits_claim(v, &many), "a mode the volume lacks");
        let mut sel = c.clone();
        sel.spec.selector = Some(LabelSelector {
            match_labels: [("type".to_string(), "nfs".to_string())].into(),
            ..Default::default()
        });
        assert!(!volume_fits_claim(v, &sel), "selector");
        let sc = Object::StorageClass(StorageClass::local_path());
        assert_eq!(
            sc.row(false, 0)[..5],
            [
                "local-path (default)",
                "skiff.io/local-path",
                "Delete",
                "WaitForFirstConsumer",
                "false"
            ]
        );
    }

    #[test]
    fn bad_volumes_claims_and_classes_name_the_field() {
        for (doc, want) in [
            (PV.replace("  capacity:\n    storage: 10Gi\n", ""), "spec.capacity: Required value"),
            (PV.replace("  accessModes:\n    - ReadWriteOnce\n", ""), "spec.accessModes: Required value: at least 1 access mode is required"),
            (PV.replace("ReadWriteOnce", "ReadWriteSometimes"), "spec.accessModes[0]: Unsupported value: \"ReadWriteSometimes\""),
            (PV.replace("  hostPath:\n    path: \"/mnt/data\"\n", ""), "spec: Required value: must specify a volume type (skiff serves hostPath and local)"),
            (PV.replace("hostPath", "local"), "spec.nodeAffinity: Required value: Local volume requires node affinity"),
            (PV.replace("/mnt/data", "mnt/data"), "spec.hostPath.path: Invalid value: \"mnt/data\": must be an absolute path"),
            (format!("{PV}  volumeMode: Block\n"), "spec.volumeMode: Forbidden: skiff serves volumeMode Filesystem only"),
            (format!("{PV}  persistentVolumeReclaimPolicy: Recycle\n"), "spec.persistentVolumeReclaimPolicy: Unsupported value: \"Recycle\""),
            (PVC.replace("      storage: 3Gi\n", "      cpu: 1\n"), "spec.resources[storage]: Required value"),
            (PVC.replace("    - ReadWriteOnce\n", "    - ReadWriteOnce\n    - ReadWriteOncePod\n"), "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"),
            ("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: fast}\nprovisioner: skiff.io/local-path\nvolumeBindingMode: Immediate\n".into(), "volumeBindingMode: Unsupported value: \"Immediate\": supported values: \"WaitForFirstConsumer\""),
            ("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: fast}\nprovisioner: skiff.io/local-path\nvolumeBindingMode: WaitForFirstConsumer\nparameters: {size: big}\n".into(), "parameters[size]: Unsupported value: \"size\""),
        ] {
            let e = errors(&doc);
            assert!(e.contains(want), "{want}\n  not in\n{e}");
        }
        // A claim's spec does not change once made, but for what the binder fills in.
        let Object::PersistentVolumeClaim(old) = one(PVC) else {
            panic!()
        };
        let mut bound = old.clone();
        bound.spec.volume_name = Some("pv-1".into());
        let check = |a: &PersistentVolumeClaim, b: &PersistentVolumeClaim| {
            crate::validate::validate_update(
                &Object::PersistentVolumeClaim(a.clone()),
                &Object::PersistentVolumeClaim(b.clone()),
            )
        };
        assert!(check(&old, &bound).is_empty());
        let mut bigger = bound.clone();
        bigger
            .spec
            .resources
            .requests
            .insert("storage".into(), Quantity::parse("5Gi").unwrap());
        let e = check(&bound, &bigger);
        assert_eq!(e[0].path, "spec", "{e:?}");
    }

    #[test]
    fn a_stateful_set_gets_a_claim_volume_per_template() {
        let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: nginx}}\n  serviceName: nginx\n  template:\n    metadata: {labels: {app: nginx}}\n    spec:\n      containers:\n      - name: nginx\n        image: nginx\n        volumeMounts: [{name: www, mountPath: /usr/share/nginx/html}]\n  volumeClaimTemplates:\n  - metadata: {name: www}\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources: {requests: {storage: 1Gi}}\n";
        let Object::StatefulSet(s) = one(sts) else {
            panic!()
        };
        let mut spec = s.spec.template.spec.clone();
        add_claim_volumes(&mut spec, &s.spec.volume_claim_templates, "web-3");
        let c = spec.volumes[0].persistent_volume_claim.as_ref().unwrap();
        assert_eq!(
            (spec.volumes[0].name.as_str(), c.claim_name.as_str()),
            ("www", "www-web-3")
        );
        let e = errors(&sts.replace("storage: 1Gi", "storage: 0"));
        assert!(e.contains("spec.volumeClaimTemplates[0].spec.resources[storage]: Invalid value: 0: must be greater than zero"), "{e}");
        let e = errors(&format!(
            "{sts}  persistentVolumeClaimRetentionPolicy: {{whenScaled: Keep}}\n"
        ));
        assert!(
            e.contains(
                "spec.persistentVolumeClaimRetentionPolicy.whenScaled: Unsupported value: \"Keep\""
            ),
            "{e}"
        );
    }
}
