// procsup: Erlang-style supervision of real OS processes. The one header a user includes.
//
//   struct counter { int n = 0; int handle(int by) { return n += by; } };
//   procsup::supervisor sup;
//   auto c = sup.spawn(counter{});      // a forked child, restarted if it fails
//   int v = c.send(5).get();            // 5
#pragma once

#include "procsup/ipc/codec.hpp"
#include "procsup/supervisor/event_loop.hpp"
#include "procsup/supervisor/launcher.hpp"
#include "procsup/supervisor/process.hpp"
#include "procsup/supervisor/reply.hpp"
#include "procsup/supervisor/supervisor.hpp"
#include "procsup/supervisor/types.hpp"
#include "procsup/worker/behavior.hpp"
#include "procsup/worker/main.hpp"
#include "procsup/worker/serve.hpp"
