//! Volumes, claims and classes: kubectl's columns (`CAPACITY`, `ACCESS MODES`, the
//! default class marked) and describe's sections.

use super::{age, selector_str, Page, Print};
use crate::quantity::Quantity;
use crate::storage::{
    access_modes_str, storage_of, PersistentVolume, PersistentVolumeClaim, StorageClass,
};
use std::collections::BTreeMap;

/// `namespace/name` of the claim a volume is bound to (empty for none).
fn claim_of(pv: &PersistentVolume) -> String {
    pv.spec.claim_ref.as_ref().map_or_else(String::new, |r| {
        format!(
            "{}/{}",
            r.namespace.as_deref().unwrap_or(""),
            r.name.as_deref().unwrap_or("")
        )
    })
}

fn quantity_cell(m: &BTreeMap<String, Quantity>) -> String {
    storage_of(m).map_or_else(String::new, |q| q.as_str().to_string())
}

impl Print for PersistentVolume {
    fn columns(wide: bool) -> Vec<&'static str> {
        let mut c = vec![
            "NAME",
            "CAPACITY",
            "ACCESS MODES",
            "RECLAIM POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE",
        ];
        if wide {
            c.push("VOLUMEMODE");
        }
        c
    }

    fn row(&self, wide: bool, now: u64) -> Vec<String> {
        let s = &self.spec;
        let claim = claim_of(self);
        let mut r = vec![
            self.metadata.name().to_string(),
            quantity_cell(&s.capacity),
            access_modes_str(&s.access_modes),
            s.persistent_volume_reclaim_policy
                .clone()
                .unwrap_or_default(),
            self.phase().to_string(),
            claim,
            self.class().to_string(),
            "<unset>".into(),
            self.status
                .as_ref()
                .and_then(|s| s.reason.clone())
                .unwrap_or_default(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ];
        if wide {
            r.push(s.volume_mode.clone().unwrap_or_default());
        }
        r
    }

    fn describe(&self, page: &mut Page) {
        let s = &self.spec;
        page.field(0, "StorageClass", self.class());
        page.field(0, "Status", self.phase());
        let claim = claim_of(self);
        page.field(0, "Claim", &claim);
        page.field(
            0,
            "Reclaim Policy",
            s.persistent_volume_reclaim_policy.as_deref().unwrap_or(""),
        );
        page.field(0, "Access Modes", &access_modes_str(&s.access_modes));
        page.field(0, "VolumeMode", s.volume_mode.as_deref().unwrap_or(""));
        page.field(0, "Capacity", &quantity_cell(&s.capacity));
        match self.node_terms() {
            None => page.field(0, "Node Affinity", "<none>"),
            Some(terms) => {
                page.line("Node Affinity:");
                page.line("  Required Terms:");
                for t in terms {
                    for e in &t.match_expressions {
                        page.line(&format!(
                            "    Term 0:        {} {} [{}]",
                            e.key,
                            e.operator.to_lowercase(),
                            e.values.join(", ")
                        ));
                    }
                }
            }
        }
        let message = self.status.as_ref().and_then(|s| s.message.clone());
        page.field(0, "Message", message.as_deref().unwrap_or(""));
        page.line("Source:");
        if let Some(h) = &s.host_path {
            page.field(4, "Type", "HostPath (bare host directory volume)");
            page.field(4, "Path", &h.path);
            page.field(4, "HostPathType", h.type_.as_deref().unwrap_or(""));
        } else if let Some(l) = &s.local {
            page.field(
                4,
                "Type",
                "LocalVolume (a persistent volume backed by local storage on a node)",
            );
            page.field(4, "Path", &l.path);
        }
    }
}

impl Print for PersistentVolumeClaim {
    fn columns(wide: bool) -> Vec<&'static str> {
        let mut c = vec![
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE",
        ];
        if wide {
            c.push("VOLUMEMODE");
        }
        c
    }

    fn row(&self, wide: bool, now: u64) -> Vec<String> {
        let st = self.status.clone().unwrap_or_default();
        let mut r = vec![
            self.metadata.name().to_string(),
            self.phase().to_string(),
            self.spec.volume_name.clone().unwrap_or_default(),
            quantity_cell(&st.capacity),
            access_modes_str(&st.access_modes),
            self.class().to_string(),
            "<unset>".into(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ];
        if wide {
            r.push(self.spec.volume_mode.clone().unwrap_or_default());
        }
        r
    }

    fn describe(&self, page: &mut Page) {
        let st = self.status.clone().unwrap_or_default();
        page.field(0, "StorageClass", self.class());
        page.field(0, "Status", self.phase());
        page.field(0, "Volume", self.spec.volume_name.as_deref().unwrap_or(""));
        page.field(0, "Capacity", &quantity_cell(&st.capacity));
        page.field(0, "Access Modes", &access_modes_str(&st.access_modes));
        page.field(
            0,
            "VolumeMode",
            self.spec.volume_mode.as_deref().unwrap_or(""),
        );
        if let Some(sel) = &self.spec.selector {
            page.field(0, "Selector", &selector_str(Some(sel)));
        }
    }
}

impl Print for StorageClass {
    fn columns(_wide: bool) -> Vec<&'static str> {
        vec![
            "NAME",
            "PROVISIONER",
            "RECLAIMPOLICY",
            "VOLUMEBINDINGMODE",
            "ALLOWVOLUMEEXPANSION",
            "AGE",
        ]
    }

    fn row(&self, _wide: bool, now: u64) -> Vec<String> {
        let mut name = self.metadata.name().to_string();
        if self.is_default() {
            name.push_str(" (default)");
        }
        vec![
            name,
            self.provisioner.clone(),
            self.reclaim_policy.clone().unwrap_or_default(),
            self.volume_binding_mode.clone().unwrap_or_default(),
            "false".into(),
            age(self.metadata.creation_timestamp.as_deref(), now),
        ]
    }

    fn describe(&self, page: &mut Page) {
        page.field(
            0,
            "IsDefaultClass",
            if self.is_default() { "Yes" } else { "No" },
        );
        page.field(0, "Provisioner", &self.provisioner);
        page.map(0, "Parameters", &self.parameters);
        page.field(0, "AllowVolumeExpansion", "<unset>");
        page.field(
            0,
            "ReclaimPolicy",
            self.reclaim_policy.as_deref().unwrap_or(""),
        );
        page.field(
            0,
            "VolumeBindingMode",
            self.volume_binding_mode.as_deref().unwrap_or(""),
        );
    }
}
