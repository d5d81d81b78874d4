# k3s-workloads: K3s on the device image, without any registry, running a workload set that
# the agent applied, and the health gate waiting for it:
#   1. the image runs K3s (outpost.k3s) with airgap images only: a pause image and the workload's
#      image, both made with dockerTools and imported from /var/lib/rancher/k3s/agent/images;
#   2. a joint bundle is made at test time: this system as v2 plus a workload set
#      ([image.manifests]: manifests/sleeper.yaml, a Deployment of the airgap image), signed
#      with a throwaway key;
#   3. installing it binds the set to slot B; after the reboot into B the agent applies the set
#      to K3s's manifests folder (outpost/ subfolder) and the trial requires workloads-ready;
#   4. the Deployment rolls out, workloads-ready passes, the gate commits B, and the decision
#      record lists workloads-ready among the passed checks.
# K3s options: nixos/modules/services/cluster/k3s (images, extraFlags, disable); the pause image
# recipe follows nixos/tests/k3s (test.local/pause:local with --pause-image).
{ outpost, ... }:

let
  keyring = "/var/lib/outpost-update/bundle-ca.pem";
in
{
  name = "outpost-k3s-workloads";

  nodes.device =
    { pkgs, ... }:
    let
      # Test images, imported by K3s at start (services.k3s.images): nothing is pulled.
      image =
        name: cmd:
        pkgs.dockerTools.buildLayeredImage {
          name = "test.local/${name}";
          tag = "local";
          contents = [
            pkgs.tini
            pkgs.busybox
          ];
          config.Entrypoint = [
            "/bin/tini"
            "--"
          ]
          ++ cmd;
        };
    in
    {
      imports = [
        ./lib/boot-image.nix
        ./lib/versions.nix
      ];
      virtualisation = {
        memorySize = 3072;
        cores = 2;
      };
      outpost.ab.keyring = keyring;
      # K3s unpacks itself and its images under /var/lib/rancher, beside the bundle.
      outpost.ab.sizes.var = "4G";
      outpost.test.versions."2.0.0" = { };
      outpost.k3s = {
        enable = true;
        # K3s's own airgap images (coredns, traefik, ...) are not needed with these disabled.
        airgapImages = false;
        images = [
          (image "pause" [
            "/bin/sleep"
            "inf"
          ])
          (image "sleeper" [
            "/bin/sleep"
            "inf"
          ])
        ];
        disable = [
          "coredns"
          "local-storage"
          "metrics-server"
          "servicelb"
          "traefik"
        ];
        extraFlags = [ "--pause-image=test.local/pause:local" ];
      };
    };

  testScript =
    { nodes, ... }:
    ''
      ${outpost.driver}
      import io
      import tarfile

      SLEEPER = """\
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: sleeper
        namespace: default
      spec:
        replicas: 1
        selector:
          matchLabels:
            app: sleeper
        template:
          metadata:
            labels:
              app: sleeper
          spec:
            containers:
              - name: sleeper
                image: test.local/sleeper:local
                imagePullPolicy: Never
      """

      def joint_bundle(pki: pathlib.Path, contents: str) -> pathlib.Path:
          """v2's bundle contents plus a workload set: an OS + workloads bundle (docs/workloads.md)."""
          d = pki / "joint"
          shutil.copytree(contents, d)
          for f in d.iterdir():
              f.chmod(0o644)
          data = SLEEPER.encode()
          with tarfile.open(d / "manifests.tar", "w") as tar:
              info = tarfile.TarInfo("manifests/sleeper.yaml")
              info.size = len(data)
              tar.addfile(info, io.BytesIO(data))
          with open(d / "manifest.raucm", "a") as m:
              m.write("\n[image.manifests]\nfilename=manifests.tar\n")
          return sign_bundle(pki, str(d), "joint.raucb", "${outpost.tools.rauc}", "${outpost.tools.path}")

      pki = release_pki("${outpost.tools.openssl}")
      bundle = joint_bundle(pki, "${nodes.device.system.build.outpostBundles."2.0.0"}")

      boot_image(device, "${outpost.image nodes.device}", "${outpost.qemuImg}")
      device.wait_for_unit("k3s.service")

      with subtest("K3s runs from airgap images only"):
          device.wait_until_succeeds("k3s kubectl get node -o json | jq -e '.items[0].status.conditions[] | select(.type == \"Ready\") | .status == \"True\"'", timeout=600)
          device.succeed("journalctl -u k3s | grep -q 'Imported images from /var/lib/rancher/k3s/agent/images/'")
          images = device.succeed("k3s crictl images -o json | jq -r '.images[].repoTags[]'").split()
          assert "test.local/pause:local" in images and "test.local/sleeper:local" in images, images

      with subtest("the joint bundle binds the set to B"):
          device.wait_until_succeeds("outpostctl slots --json")
          install(device, pki, bundle, "${keyring}")
          assert slots(device)["primary"] == "rootfs.1"

      with subtest("in B the agent applies the set and the gate waits for workloads-ready"):
          device.reboot()
          device.wait_for_unit("multi-user.target")
          assert "outpost.slot=B" in device.succeed("cat /proc/cmdline").split()
          device.wait_until_succeeds("test -s /var/lib/rancher/k3s/server/manifests/outpost/sleeper.yaml", timeout=300)
          device.wait_until_succeeds("k3s kubectl rollout status deployment/sleeper --timeout=10s", timeout=600)
          device.succeed("outpostctl health --wait --timeout 10m", timeout=700)

      with subtest("committed with workloads-ready passed, the set applied"):
          device.wait_until_succeeds("test -e /boot/loader/entries/outpost_2-B.conf", timeout=60)
          health = json.loads(device.succeed("outpostctl health --json"))
          assert health["phase"] == "committed", health
          checks = {c["name"]: c for c in health["checks"]}
          assert checks["workloads-ready"]["result"] == "pass", health
          w = json.loads(device.succeed("outpostctl workloads --json"))
          assert w["desired"] == "2.0.0" and w["applied"] == "2.0.0", w
          assert w["last_error"] is None, w
    '';
}
