/* Levelled logging to stderr. Never pass key material here. */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void	       log_init(const char *prog, enum log_level lvl);
int	       log_level_parse(const char *s, enum log_level *out);
enum log_level log_get_level(void);
void	       log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
