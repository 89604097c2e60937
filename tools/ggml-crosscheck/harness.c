// Reference-bytes harness: quantizes float32 rows with ggml's own quantize_* functions (from the ggml
// sources shipped in the npm package llama.rn, see make-vectors.sh) and writes the bytes to stdout.
// Usage: harness TYPE N_PER_ROW NROWS [IMATRIX_FILE] < rows.f32 > out.bin
// This file is ours; the ggml sources are fetched at run time and never committed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml.h"
#include "ggml-quants.h"

typedef size_t (*quantize_fn)(const float *, void *, int64_t, int64_t, const float *);

static const struct { const char *name; int type; int block; int bytes; quantize_fn fn; } table[] = {
    { "Q4_0", LM_GGML_TYPE_Q4_0, 32, 18, quantize_q4_0 },
    { "Q4_1", LM_GGML_TYPE_Q4_1, 32, 20, quantize_q4_1 },
    { "Q5_0", LM_GGML_TYPE_Q5_0, 32, 22, quantize_q5_0 },
    { "Q5_1", LM_GGML_TYPE_Q5_1, 32, 24, quantize_q5_1 },
    { "Q8_0", LM_GGML_TYPE_Q8_0, 32, 34, quantize_q8_0 },
    { "Q4_K", LM_GGML_TYPE_Q4_K, 256, 144, quantize_q4_K },
    { "Q5_K", LM_GGML_TYPE_Q5_K, 256, 176, quantize_q5_K },
    { "Q6_K", LM_GGML_TYPE_Q6_K, 256, 210, quantize_q6_K },
    { "IQ4_NL", LM_GGML_TYPE_IQ4_NL, 32, 18, quantize_iq4_nl },
};

// The few ggml.c entry points ggml-quants.c calls.
size_t lm_ggml_row_size(enum lm_ggml_type type, int64_t ne) {
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].type == (int)type) return (size_t)(ne / table[i].block * table[i].bytes);
    abort();
}
size_t lm_ggml_type_size(enum lm_ggml_type type) { (void)type; abort(); }
const char *lm_ggml_type_name(enum lm_ggml_type type) { (void)type; return "?"; }
void lm_ggml_abort(const char *file, int line, const char *fmt, ...) { fprintf(stderr, "abort %s:%d %s\n", file, line, fmt); abort(); }

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: harness TYPE N_PER_ROW NROWS [IMATRIX]\n"); return 2; }
    int n = atoi(argv[2]), rows = atoi(argv[3]);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].name, argv[1]) != 0) continue;
        float *x = malloc(sizeof(float) * (size_t)n * rows);
        if (fread(x, sizeof(float), (size_t)n * rows, stdin) != (size_t)n * rows) { fprintf(stderr, "short input\n"); return 2; }
        float *imatrix = NULL;
        if (argc > 4) {
            FILE *f = fopen(argv[4], "rb");
            imatrix = malloc(sizeof(float) * n);
            if (!f || fread(imatrix, sizeof(float), n, f) != (size_t)n) { fprintf(stderr, "bad imatrix\n"); return 2; }
            fclose(f);
        }
        size_t size = (size_t)rows * (n / table[i].block) * table[i].bytes;
        void *y = calloc(1, size);
        table[i].fn(x, y, rows, n, imatrix);
        fwrite(y, 1, size, stdout);
        return 0;
    }
    fprintf(stderr, "unknown type %s\n", argv[1]);
    return 2;
}
