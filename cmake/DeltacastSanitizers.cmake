# ASan + UBSan for the core, its tests and (when preloaded into node) the addon.
# DELTACAST_FUZZ: the core is instrumented for libFuzzer's coverage as well.
function(deltacast_set_sanitizers target)
  if(DELTACAST_FUZZ)
    target_compile_options(${target} PUBLIC -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined -g -fsanitize-ignorelist=${PROJECT_SOURCE_DIR}/test/fuzz/ubsan_ignorelist.txt)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  elseif(DELTACAST_SANITIZE)
    target_compile_options(${target} PUBLIC -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  endif()
endfunction()
