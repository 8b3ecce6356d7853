// The one place Boost.Asio is included. Boost 1.74's Asio uses std::exchange
// without including <utility> under C++20.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <utility>
