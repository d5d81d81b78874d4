# identity: the device (booted from its image, with a swtpm TPM 2.0: virtualisation.tpm)
# enrolls with a one-time token, proving its key is in that TPM, and uploads over mTLS:
#   1. the hub VM makes a fleet and allowlists the device's EK (swtpm has no EK certificate; the
#      EK id is read from the device's TPM with tpm2-tools, the way an operator would);
#   2. a token is created on the hub and put on the device's /var (it never enters the store);
#   3. the agent, [identity] backend = "tpm", enrolls by itself: the device id is the EK id, the
#      key is TPM-protected, the certificate lives in the agent's state, no private key file;
#   4. a record published on the device arrives at the hub under that id (mTLS with the TPM
#      key), and the hub lists the device as enrolled with key protection "tpm".
{ outpost, ... }:

let
  inherit (import ./lib/hub.nix) fleet identity hubNode hubClient;
in
{
  name = "outpost-identity";

  nodes.hub = hubNode;

  nodes.device =
    { pkgs, ... }:
    {
      # No identityFiles (certificate and key): the hub issues the certificate at enrollment.
      imports = [
        ./lib/boot-image.nix
        hubClient
      ];
      virtualisation.tpm.enable = true;
      services.outpost.agent.settings.identity = {
        backend = "tpm";
        token_file = "${identity}/token";
      };
      # Skipped (not failed) until the hub's CA is on the device: a missing LoadCredential=
      # source fails the unit, and repeated failures reboot the device.
      systemd.services.outpost-agent.unitConfig.ConditionPathExists = "${identity}/hub-ca.pem";
      environment.systemPackages = [
        pkgs.jq
        pkgs.openssl
        pkgs.tpm2-tools
      ];
    };

  testScript =
    { nodes, ... }:
    ''
      ${outpost.driver}

      boot_with_hub(hub, device, "${outpost.image nodes.device}", "${outpost.qemuImg}")

      with subtest("the hub trusts this TPM's EK"):
          device.succeed("test -c /dev/tpmrm0")
          # EK id: hex SHA-256 of the RSA-2048 EK's SubjectPublicKeyInfo (TCG template L-1, the
          # default of tpm2_createek -G rsa), what the hub calls the device id (docs/security.md).
          ek_id = device.succeed(
              "tpm2_createek -T device:/dev/tpmrm0 -c /tmp/ek.ctx -G rsa -u /tmp/ek.pem -f pem >/dev/null"
              " && openssl pkey -pubin -in /tmp/ek.pem -outform DER | sha256sum | cut -d' ' -f1"
          ).strip()
          assert len(ek_id) == 64, ek_id
          make_fleet(hub, "${fleet}")
          hub.succeed(f"sed -i 's/^ek_allowlist = \\[\\]$/ek_allowlist = [\"{ek_id}\"]/' ${fleet}/hub.toml")
          hub.succeed(f"grep -qx 'ek_allowlist = \\[\"{ek_id}\"\\]' ${fleet}/hub.toml")
          hub.succeed("systemctl start outpost-hub.service")
          hub.wait_for_open_port(8443)

      with subtest("a token and the hub's CA reach the device at run time"):
          token = hub.succeed("outpost-hub token create --config ${fleet}/hub.toml --ttl 1h").strip()
          hub_to_device(hub, device, "${fleet}/ca.pem", "${identity}/hub-ca.pem")
          device.succeed(f"umask 077 && echo '{token}' > ${identity}/token")
          device.succeed("systemctl start outpost-agent.service")
          device.wait_for_unit("outpost-agent.service")

      with subtest("the agent enrolls with its TPM key; the device id is the EK id"):
          device.wait_until_succeeds("outpostctl identity --json | jq -e '.enrollment == \"enrolled\"'", timeout=300)
          ident = json.loads(device.succeed("outpostctl identity --json"))
          assert ident["backend"] == "tpm" and ident["key_protection"] == "tpm", ident
          assert ident["device_id"] == ek_id, ident
          # The key is a TPM blob; no PEM private key exists on the device.
          device.succeed("test -s /var/lib/outpost/identity/identity.tpmkey")
          device.fail("grep -rl 'PRIVATE KEY' /var/lib/outpost /var/lib/outpost-identity")

      with subtest("a record travels over mTLS under the enrolled id"):
          device.succeed("outpostctl publish readings '{\"celsius\": 21.5}'")
          hub.wait_until_succeeds(
              f"outpost-hub records --config ${fleet}/hub.toml --device {ek_id} --stream readings --json"
              " | jq -e 'length == 1'",
              timeout=120,
          )
          devices = json.loads(hub.succeed("outpost-hub devices --config ${fleet}/hub.toml --json"))
          mine = [d for d in devices if d["id"] == ek_id]
          assert len(mine) == 1 and mine[0]["status"] == "enrolled", devices
          assert mine[0]["key_protection"] == "tpm", devices
    '';
}
