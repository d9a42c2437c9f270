//! A container's image by its pull policy: the one on the node, or pulled (a node cut
//! off from its registry runs the image it has).

use super::*;

impl Worker {
    pub(super) async fn image(
        &mut self,
        pod: &Pod,
        c: &Container,
        sources: &Sources,
    ) -> Result<ImageRecord, (String, String)> {
        let image = c.image.clone().unwrap_or_default();
        // The server fills the policy in from the tag, as Kubernetes does.
        let policy = c
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| "IfNotPresent".into());
        let present = self.agent.images.get(&image);
        match (policy.as_str(), present) {
            ("Never", Some(r)) | ("IfNotPresent", Some(r)) => {
                self.agent.event(
                    pod,
                    "Normal",
                    "Pulled",
                    format!("Container image {image:?} already present on machine"),
                );
                return Ok(r);
            }
            ("Never", None) => {
                let msg =
                    format!("Container image {image:?} is not present with pull policy of Never");
                self.agent
                    .event(pod, "Warning", "ErrImageNeverPull", msg.clone());
                return Err(("ErrImageNeverPull".into(), msg));
            }
            _ => {}
        }
        // The pod's pull Secrets' credentials for the image's registry, if any; else the
        // node's (registries.yaml).
        let (entries, problems) = sources.pull_credentials(pod);
        if !problems.is_empty() {
            let msg = format!("Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.", problems.join(", "));
            self.agent
                .event(pod, "Warning", "FailedToRetrieveImagePullSecret", msg);
        }
        let own = skiff_images::Reference::parse(&image).ok().and_then(|r| {
            let creds = skiff_images::docker_config::find(&entries, &r.registry, &r.repository)?;
            Some(self.agent.registries.with_auth(&r.registry, creds.clone()))
        });
        let registries = own.as_ref().unwrap_or(&self.agent.registries);
        self.agent
            .event(pod, "Normal", "Pulling", format!("Pulling image {image:?}"));
        let started = Instant::now();
        let report = |_: skiff_images::Progress| {};
        match self.agent.images.pull(&image, registries, &report).await {
            Ok(r) => {
                self.agent.event(
                    pod,
                    "Normal",
                    "Pulled",
                    format!(
                        "Successfully pulled image {image:?} in {:.3}s",
                        started.elapsed().as_secs_f64()
                    ),
                );
                Ok(r)
            }
            Err(e) => {
                // A node cut off from its registry keeps running what it has.
                if let Some(r) = self.agent.images.get(&image) {
                    self.agent.event(
                        pod,
                        "Warning",
                        "Failed",
                        format!("Failed to pull image {image:?}: {e}; using the image present on the node"),
                    );
                    return Ok(r);
                }
                let msg = format!("Failed to pull image {image:?}: {e}");
                self.agent.event(pod, "Warning", "Failed", msg.clone());
                Err(("ErrImagePull".into(), msg))
            }
        }
    }
}
