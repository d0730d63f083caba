-- churn_probability of each client at D: the share of comparable past cases (same segment,
-- overdue ratio bucket and order days bucket; int_clients__backtest_cases, horizons passed
-- by D) that did not order again within their horizon, smoothed towards the same buckets
-- over all segments, and those towards all past cases, with weight
-- probability_prior_cases: p = (lost + k x p_wider) / (cases + k).

with

cadence as (

    select * from {{ ref('int_clients__cadence') }}

),

backtest_cases as (

    select * from {{ ref('int_clients__backtest_cases') }}

),

overall as (

    select
        count(*) as cases,
        count(*) filter (where did_not_order_again) as lost

    from backtest_cases

),

by_buckets as (

    select
        overdue_ratio_bucket,
        order_days_bucket,
        count(*) as cases,
        count(*) filter (where did_not_order_again) as lost

    from backtest_cases

    group by overdue_ratio_bucket, order_days_bucket

),

by_segment_buckets as (

    select
        segment,
        overdue_ratio_bucket,
        order_days_bucket,
        count(*) as cases,
        count(*) filter (where did_not_order_again) as lost

    from backtest_cases

    group by segment, overdue_ratio_bucket, order_days_bucket

),

clients as (

    select
        client_id,
        segment,
        overdue_ratio,
        distinct_order_days,
        {{ overdue_ratio_bucket('overdue_ratio') }} as overdue_ratio_bucket,
        {{ order_days_bucket('distinct_order_days') }} as order_days_bucket

    from cadence

),

smoothed as (

    select
        clients.*,
        coalesce(by_segment_buckets.cases, 0) as segment_cases,
        coalesce(by_segment_buckets.lost, 0) as segment_lost,
        coalesce(by_buckets.cases, 0) as all_segments_cases,
        coalesce(by_buckets.lost, 0) as all_segments_lost,
        overall.cases as overall_cases,
        cast(overall.lost as double) / nullif(overall.cases, 0) as overall_share

    from clients
    cross join overall
    left join by_buckets
        on
            clients.overdue_ratio_bucket = by_buckets.overdue_ratio_bucket
            and clients.order_days_bucket = by_buckets.order_days_bucket
    left join by_segment_buckets
        on
            clients.segment = by_segment_buckets.segment
            and clients.overdue_ratio_bucket = by_segment_buckets.overdue_ratio_bucket
            and clients.order_days_bucket = by_segment_buckets.order_days_bucket

),

all_segments as (

    select
        *,
        (all_segments_lost + {{ var('probability_prior_cases') }} * overall_share)
        / (all_segments_cases + {{ var('probability_prior_cases') }}) as all_segments_probability

    from smoothed

),

final as (

    select
        client_id,
        segment,
        overdue_ratio_bucket,
        order_days_bucket,
        -- null: not judged (no order yet) or no past case at all to learn from
        case
            when overdue_ratio_bucket is not null and order_days_bucket is not null
                then
                    (segment_lost + {{ var('probability_prior_cases') }} * all_segments_probability)
                    / (segment_cases + {{ var('probability_prior_cases') }})
        end as churn_probability,
        case
            when overdue_ratio_bucket is not null and order_days_bucket is not null then segment_cases
        end as churn_probability_cases,
        case
            when overdue_ratio_bucket is not null and order_days_bucket is not null then all_segments_cases
        end as all_segments_cases,
        overall_cases

    from all_segments

)

select * from final
