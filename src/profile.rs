//! Resource profiles: what `--profile dev` and `--profile prod` mean in requests and limits.
//!
//! The chart's own default (`resourcesPreset: nano`, 192Mi) OOMs under real work, so pgk8s always
//! sets resources explicitly: small ones for development, the user's own for production.

use crate::chart::Resources;
use crate::cli::Profile;
use crate::error::Failure;
use crate::names::Quantity;

/// Requests and limits the user set with flags; each overrides the profile's.
#[derive(Clone, Debug, Default)]
pub struct Explicit {
    /// `--cpu-request`.
    pub cpu_request: Option<Quantity>,
    /// `--memory-request`.
    pub memory_request: Option<Quantity>,
    /// `--cpu-limit`.
    pub cpu_limit: Option<Quantity>,
    /// `--memory-limit`.
    pub memory_limit: Option<Quantity>,
}

/// The resources of `profile` with `explicit` values over them. `dev`: 250m CPU and 256Mi
/// requested, 1Gi memory limit, no CPU limit. `prod`: the requests must be given; the memory
/// limit defaults to the memory request.
pub fn resources(profile: Profile, explicit: Explicit) -> Result<Resources, Failure> {
    let Explicit {
        cpu_request,
        memory_request,
        cpu_limit,
        memory_limit,
    } = explicit;
    match profile {
        Profile::Dev => Ok(Resources {
            cpu_request: cpu_request.unwrap_or_else(|| Quantity::known("250m")),
            memory_request: memory_request.unwrap_or_else(|| Quantity::known("256Mi")),
            cpu_limit,
            memory_limit: memory_limit.unwrap_or_else(|| Quantity::known("1Gi")),
        }),
        Profile::Prod => {
            let (Some(cpu_request), Some(memory_request)) = (cpu_request, memory_request) else {
                return Err(Failure::usage("--profile prod needs explicit --cpu-request and --memory-request")
                    .hint("size them for your workload, e.g. --cpu-request 1 --memory-request 2Gi (the memory limit defaults to the request)"));
            };
            Ok(Resources {
                memory_limit: memory_limit.unwrap_or_else(|| memory_request.clone()),
                cpu_request,
                memory_request,
                cpu_limit,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_has_small_defaults_and_prod_needs_requests() {
        let dev = resources(Profile::Dev, Explicit::default()).unwrap();
        assert_eq!(
            (
                dev.cpu_request.as_str(),
                dev.memory_request.as_str(),
                dev.memory_limit.as_str()
            ),
            ("250m", "256Mi", "1Gi")
        );
        assert!(dev.cpu_limit.is_none());
        assert!(resources(Profile::Prod, Explicit::default()).is_err());
        let prod = resources(
            Profile::Prod,
            Explicit {
                cpu_request: Some(Quantity::known("1")),
                memory_request: Some(Quantity::known("2Gi")),
                ..Explicit::default()
            },
        )
        .unwrap();
        assert_eq!(prod.memory_limit.as_str(), "2Gi");
    }
}
