/* 8 threads sum disjoint ranges; a mutex-protected total and a barrier-like
 * condition variable hand-off.  Output is deterministic. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NTHREADS 8
#define PER 1000000ULL

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static unsigned long long total;
static int finished;
static unsigned long long partial[NTHREADS];

static void *work(void *arg)
{
    long idx = (long)arg;
    unsigned long long s = 0;
    for (unsigned long long i = idx * PER; i < (idx + 1) * PER; i++)
        s += i;
    partial[idx] = s;
    pthread_mutex_lock(&lock);
    total += s;
    finished++;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    return (void *)(idx * 10);
}

int main(void)
{
    pthread_t t[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        if (pthread_create(&t[i], NULL, work, (void *)i) != 0) {
            perror("pthread_create");
            return 2;
        }
    pthread_mutex_lock(&lock);
    while (finished < NTHREADS)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    long retsum = 0;
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        retsum += (long)ret;
        printf("thread %d: %llu\n", i, partial[i]);
    }
    unsigned long long n = NTHREADS * PER;
    printf("total %llu expected %llu retsum %ld\n", total, n * (n - 1) / 2, retsum);
    return total == n * (n - 1) / 2 ? 0 : 1;
}
