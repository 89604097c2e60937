// Stubs for the ggml-backend entry points ggml.c/gguf.cpp reference but a read-only check never calls.
#include <stdlib.h>
#include <stddef.h>
void lm_ggml_backend_tensor_memset(void*t,unsigned char v,size_t o,size_t s){abort();}
void lm_ggml_backend_tensor_set(void*t,const void*d,size_t o,size_t s){abort();}
void lm_ggml_backend_tensor_get(const void*t,void*d,size_t o,size_t s){abort();}
int lm_ggml_backend_buffer_get_usage(void*b){abort();}
