#include "util/process_memory.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

namespace tinyfaas {
namespace {

constexpr std::size_t kChildBytes = 32u << 20;

TEST(ProcessMemoryTest, CountsWhatAChildTouchesInItsParentsTree) {
  const auto before = processTreePssBytes(::getpid());
  ASSERT_TRUE(before);
  int ready[2];
  int done[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(done), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto* block = static_cast<char*>(std::malloc(kChildBytes));
    std::memset(block, 1, kChildBytes);  // private, touched pages
    char byte = 'r';
    if (::write(ready[1], &byte, 1) != 1) ::_exit(1);
    (void)::read(done[0], &byte, 1);
    ::_exit(block[kChildBytes - 1] == 1 ? 0 : 1);
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);

  const auto ofChild = processTreePssBytes(child);
  const auto after = processTreePssBytes(::getpid());
  ASSERT_TRUE(ofChild);
  ASSERT_TRUE(after);
  EXPECT_GE(*ofChild, kChildBytes);
  EXPECT_GE(*after, *before + kChildBytes - (1u << 20));
  // A tree read no further than its root leaves the child out: a function
  // that forks without end cannot make the measurement endless.
  const auto rootOnly = processTreePssBytes(::getpid(), 1);
  ASSERT_TRUE(rootOnly);
  EXPECT_LT(*rootOnly, *after - kChildBytes / 2);

  ASSERT_EQ(::write(done[1], &byte, 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(processTreePssBytes(child)) << "a process that is gone has no memory to report";
  for (int fd : {ready[0], ready[1], done[0], done[1]}) ::close(fd);
}

TEST(ProcessMemoryTest, NoSuchProcessIsUnknown) { EXPECT_FALSE(processTreePssBytes(INT_MAX)); }

}  // namespace
}  // namespace tinyfaas
