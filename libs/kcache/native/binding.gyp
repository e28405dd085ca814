{
  "targets": [
    {
      "target_name": "kcache_shm",
      "sources": ["kcache_shm.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-lpthread"]
    }
  ]
}
