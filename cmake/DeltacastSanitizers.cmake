# ASan + UBSan for the core, its tests and (when preloaded into node) the addon.
function(deltacast_set_sanitizers target)
  if(DELTACAST_SANITIZE)
    target_compile_options(${target} PUBLIC -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
    target_link_options(${target} PUBLIC -fsanitize=address,undefined)
  endif()
endfunction()
