# outpost.k3s: a single-node K3s server for device workloads, ready without network.
#
# Wraps services.k3s (nixpkgs nixos/modules/services/cluster/k3s/default.nix and the newer
# shared nixos/modules/services/cluster/rancher/{default,k3s}.nix; only options present in both
# are used: enable, role, disable, extraFlags, images, manifests, gracefulNodeShutdown).
#
# - Airgap: the k3s system images (pause, coredns, local-path-provisioner) are linked into
#   /var/lib/rancher/k3s/agent/images and imported at start, so a device that never saw a
#   registry still runs its pods (nixos/tests/k3s/airgap-images.nix does the same).
# - Manifests: files in /var/lib/rancher/k3s/server/manifests are applied by k3s's deploy
#   controller; services.k3s.manifests links the ones given here from the image.
# - The agent: [k3s] and [workloads] in its settings, write access to K3s's server folder
#   (manifests/outpost, the staging folder, tls for certificate rotation) and images folder.
# - Immutable /etc: k3s writes /etc/rancher/node/password and /etc/rancher/k3s/k3s.yaml, so
#   /etc/rancher is bind-mounted from /var (outpost.immutable.persistentEtcDirs).
{ config
, lib
, ...
}:

let
  cfg = config.outpost.k3s;
in
{
  # Sets options of both (deduplicated by path when modules/default.nix imports them too).
  imports = [
    ./agent.nix
    ./immutable.nix
  ];

  options.outpost.k3s = {
    enable = lib.mkEnableOption "a single-node K3s server for workloads";

    airgapImages = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Ship the k3s system images of `services.k3s.package` (its `airgap-images`) in the image.";
    };

    images = lib.mkOption {
      type = lib.types.listOf lib.types.package;
      default = [ ];
      description = ''
        Extra container image archives (e.g. `pkgs.dockerTools.buildLayeredImage` results)
        imported by k3s at start, for workloads that must run without a registry.
      '';
    };

    manifests = lib.mkOption {
      type = lib.types.attrsOf lib.types.anything;
      default = { };
      example = lib.literalExpression ''
        { sensor-reader.source = ./manifests/sensor-reader.yaml; }
      '';
      description = ''
        Passed to `services.k3s.manifests` (each `{ source = path; }` or `{ content = attrs; }`).
        Never put secrets here: manifests are in the world-readable Nix store.
      '';
    };

    disable = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [
        "traefik"
        "servicelb"
        "metrics-server"
      ];
      description = ''
        Packaged components not started (`--disable`). An edge node has no load balancer or
        ingress by default; coredns and local-storage stay.
      '';
    };

    extraFlags = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      description = "Extra flags for `k3s server`.";
    };
  };

  config = lib.mkIf cfg.enable {
    services.k3s = {
      enable = true;
      role = "server";
      inherit (cfg) disable;
      images = lib.optional cfg.airgapImages config.services.k3s.package.airgap-images ++ cfg.images;
      inherit (cfg) manifests;
      extraFlags = [
        # Single node, embedded SQLite. Port 6443 stays closed by the NixOS firewall.
        "--write-kubeconfig-mode=0600"
      ]
      ++ cfg.extraFlags;
      gracefulNodeShutdown.enable = true;
    };

    outpost.immutable.persistentEtcDirs = lib.mkIf config.outpost.immutable.enable [ "rancher" ];

    # The agent supervises K3s and owns manifests/outpost (docs/workloads.md): it swaps that
    # folder from a staging folder beside manifests/, copies airgap images, and rotates K3s's
    # certificates in server/tls; [k3s] and [workloads] defaults are K3s's own paths.
    services.outpost.agent = lib.mkIf config.services.outpost.agent.enable {
      settings.k3s = lib.mkDefault { };
      settings.workloads = lib.mkDefault { };
      readWritePaths = [
        "/var/lib/rancher/k3s/server"
        "/var/lib/rancher/k3s/agent/images"
      ];
    };
  };
}
