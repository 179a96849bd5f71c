// The original design's "Chat Room System": a supervised chat room that keeps its users and the
// last 100 messages; users join, talk, ask who is online and leave.
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "example_support.hpp"

namespace {

using nlohmann::json;
using examples::say;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// { "type": "join" | "leave" | "message" | "get_users" | "get_messages", "userId"?, "username"?, "text"? }
class chat_room_behavior {
 public:
  void init() { say("  [child {}] Chat room started", ::getpid()); }

  json handle(json message) {
    const std::string type = message.value("type", "");
    if (type == "join") return handle_join(message.at("userId"), message.at("username"));
    if (type == "leave") return handle_leave(message.at("userId"));
    if (type == "message") return handle_message(message.at("userId"), message.at("text"));
    if (type == "get_users") {
      json users = json::array();
      for (const auto& [id, user] : users_) users.push_back(user);
      return users;
    }
    if (type == "get_messages") {  // the last 50
      const std::size_t from = messages_.size() > 50 ? messages_.size() - 50 : 0;
      return json(std::vector<json>(messages_.begin() + static_cast<std::ptrdiff_t>(from), messages_.end()));
    }
    throw std::runtime_error("Unknown message type: " + type);
  }

  void terminate() {
    say("  [child {}] Chat room shutting down", ::getpid());
    say("  [child {}] {} users were online", ::getpid(), users_.size());
    say("  [child {}] {} messages in history", ::getpid(), messages_.size());
  }

 private:
  json handle_join(const std::string& user_id, const std::string& username) {
    users_[user_id] = {{"username", username}, {"joinedAt", now_ms()}};
    add_message({{"userId", "system"}, {"username", "System"}, {"text", username + " joined the chat"}, {"timestamp", now_ms()}});
    return {{"success", true}, {"message", "Welcome " + username + "!"}, {"userCount", users_.size()}};
  }

  json handle_leave(const std::string& user_id) {
    const auto it = users_.find(user_id);
    if (it == users_.end()) return {{"success", false}, {"message", "User not found"}};
    const std::string username = it->second.at("username");
    users_.erase(it);
    add_message({{"userId", "system"}, {"username", "System"}, {"text", username + " left the chat"}, {"timestamp", now_ms()}});
    return {{"success", true}, {"message", username + " left the chat"}, {"userCount", users_.size()}};
  }

  json handle_message(const std::string& user_id, const std::string& text) {
    const auto it = users_.find(user_id);
    if (it == users_.end()) return {{"success", false}, {"message", "User not in chat room"}};
    add_message({{"userId", user_id}, {"username", it->second.at("username")}, {"text", text}, {"timestamp", now_ms()}});
    return {{"success", true}, {"message", "Message sent"}, {"messageCount", messages_.size()}};
  }

  void add_message(json message) {
    messages_.push_back(std::move(message));
    if (messages_.size() > max_messages) messages_.erase(messages_.begin(), messages_.end() - max_messages);
  }

  static constexpr std::size_t max_messages = 100;
  std::map<std::string, json> users_;  // by userId
  std::vector<json> messages_;
};

int run() {
  examples::checks check;
  say("== Chat room ==");
  procsup::supervisor_options options;
  options.name = "chat";
  procsup::supervisor sup(options);
  auto room = sup.spawn(chat_room_behavior{}, {.name = "chat-room"});

  auto send = [&](const json& message) {
    const json reply = room.send(message).get();
    say("  {} -> {}", message.dump(), reply.dump());
    return reply;
  };

  // Users join the chat.
  send({{"type", "join"}, {"userId", "user1"}, {"username", "Alice"}});
  send({{"type", "join"}, {"userId", "user2"}, {"username", "Bob"}});
  const json third = send({{"type", "join"}, {"userId", "user3"}, {"username", "Charlie"}});
  check.expect(third.value("userCount", 0) == 3 && third.value("message", "") == "Welcome Charlie!", "three users joined");

  // They talk.
  send({{"type", "message"}, {"userId", "user1"}, {"text", "Hello everyone!"}});
  send({{"type", "message"}, {"userId", "user2"}, {"text", "Hi Alice! How are you?"}});
  const json last = send({{"type", "message"}, {"userId", "user3"}, {"text", "Great to see you all here!"}});
  check.expect(last.value("messageCount", 0) == 6, "three join notices and three messages in history");
  const json stranger = send({{"type", "message"}, {"userId", "user9"}, {"text", "Let me in"}});
  check.expect(!stranger.value("success", true), "a user who has not joined cannot post");

  // The current state.
  const json users = room.send({{"type", "get_users"}}).get();
  const json messages = room.send({{"type", "get_messages"}}).get();
  say("  Users online: {}", users.size());
  for (const auto& u : users) say("    {}", u.at("username").get<std::string>());
  say("  Recent messages:");
  for (const auto& m : messages) say("    {}: {}", m.at("username").get<std::string>(), m.at("text").get<std::string>());
  check.expect(users.size() == 3, "three users online");
  check.expect(messages.size() == 6 && messages[3].at("text") == "Hello everyone!" && messages[5].at("username") == "Charlie",
               "the history holds the messages in order");

  const json left = send({{"type", "leave"}, {"userId", "user2"}});
  check.expect(left.value("userCount", 0) == 2 && left.value("message", "") == "Bob left the chat", "Bob left");
  const json again = send({{"type", "leave"}, {"userId", "user2"}});
  check.expect(!again.value("success", true), "leaving twice reports user not found");
  const json after = room.send({{"type", "get_messages"}}).get();
  check.expect(after.size() == 7 && after.back().at("text") == "Bob left the chat", "the leave notice is in the history");

  sup.stop();  // terminate() runs in the child and prints the room's totals
  check.expect(room.state() == procsup::process_state::stopped, "the chat room stopped cleanly");
  return check.exit_code("chat_room");
}

}  // namespace

int main() { return examples::run_example("chat_room", run); }
