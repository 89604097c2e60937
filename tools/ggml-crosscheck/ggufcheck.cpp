// Opens a GGUF file with ggml's own reader and lists keys and tensors (compatibility check, not committed).
#include <cstdio>
#include "gguf.h"
#include "ggml.h"
int main(int argc, char **argv) {
    struct lm_ggml_context *ctx = nullptr;
    struct lm_gguf_init_params params = { /*no_alloc*/ false, &ctx };
    struct lm_gguf_context *g = lm_gguf_init_from_file(argv[1], params);
    if (!g) { printf("FAILED to open\n"); return 1; }
    printf("version %d, %lld keys, %lld tensors, alignment %zu\n", (int)lm_gguf_get_version(g), (long long)lm_gguf_get_n_kv(g), (long long)lm_gguf_get_n_tensors(g), lm_gguf_get_alignment(g));
    for (int i = 0; i < lm_gguf_get_n_kv(g) && i < 6; i++) printf("  key %s type %d\n", lm_gguf_get_key(g, i), (int)lm_gguf_get_kv_type(g, i));
    for (int i = 0; i < lm_gguf_get_n_tensors(g) && i < 4; i++) printf("  tensor %s type %d offset %zu\n", lm_gguf_get_tensor_name(g, i), (int)lm_gguf_get_tensor_type(g, i), lm_gguf_get_tensor_offset(g, i));
    struct lm_ggml_tensor *t = lm_ggml_get_first_tensor(ctx);
    int n = 0; for (; t; t = lm_ggml_get_next_tensor(ctx, t)) n++;
    printf("loaded %d tensors with data into a ggml context\n", n);
    lm_gguf_free(g);
    return 0;
}
