// Writes N fresh ed25519 keys (each with a cv25519 subkey and one user ID
// "Bulk User I <bulk-I@PREFIX.example>") as one armored public keyring, fast enough for tests,
// and prints their fingerprints, one per line. With "shared", every key carries the one address
// <PREFIX@PREFIX.example> (a flooded address):
//   keygen N OUT.asc [PREFIX [shared]]
#include <fcntl.h>
#include <rnp/rnp.h>
#include <rnp/rnp_err.h>
#include <unistd.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: keygen N OUT.asc [PREFIX]\n");
    return 2;
  }
  const int n = std::stoi(argv[1]);
  const std::string prefix = argc > 3 ? argv[3] : "bulk";
  const bool shared = argc > 4 && std::string(argv[4]) == "shared";
  rnp_ffi_t ffi = nullptr;
  if (rnp_ffi_create(&ffi, "GPG", "GPG") != RNP_SUCCESS) return 1;
  rnp_ffi_set_log_fd(ffi, ::open("/dev/null", O_WRONLY));
  for (int i = 0; i < n; ++i) {
    const std::string local = shared ? prefix : prefix + "-" + std::to_string(i);
    const std::string uid =
        "Bulk User " + std::to_string(i) + " <" + local + "@" + prefix + ".example>";
    rnp_key_handle_t key = nullptr;
    if (rnp_generate_key_25519(ffi, uid.c_str(), nullptr, &key) != RNP_SUCCESS) {
      std::fprintf(stderr, "keygen: generation failed at key %d\n", i);
      return 1;
    }
    char* fpr = nullptr;
    if (rnp_key_get_fprint(key, &fpr) == RNP_SUCCESS) {
      std::printf("%s\n", fpr);
      rnp_buffer_destroy(fpr);
    }
    rnp_key_handle_destroy(key);
  }
  rnp_output_t out = nullptr;
  if (rnp_output_to_path(&out, argv[2]) != RNP_SUCCESS) return 1;
  const std::uint32_t flags = RNP_LOAD_SAVE_PUBLIC_KEYS;
  rnp_output_t armored = nullptr;
  rnp_output_to_armor(out, &armored, "public key");
  const rnp_result_t r = rnp_save_keys(ffi, "GPG", armored, flags);
  rnp_output_finish(armored);
  rnp_output_destroy(armored);
  rnp_output_destroy(out);
  rnp_ffi_destroy(ffi);
  return r == RNP_SUCCESS ? 0 : 1;
}
