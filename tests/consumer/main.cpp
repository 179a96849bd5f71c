// Uses the installed library: a supervised forked counter. Exits 0 when the reply is right.
#include <procsup/procsup.hpp>

#include <cstdio>

struct counter {
  int n = 0;
  int handle(int by) { return n += by; }
};

int main() {
  procsup::supervisor sup({.name = "consumer", .log = false});
  auto c = sup.spawn(counter{});
  c.send(2).get();
  const int v = c.send(3).get();
  std::printf("consumer: counter = %d\n", v);
  sup.stop();
  return v == 5 ? 0 : 1;
}
