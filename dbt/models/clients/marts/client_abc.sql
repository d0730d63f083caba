with

abc_ranking as (

    select * from {{ ref('int_clients__abc_ranking') }}

),

xyz as (

    select * from {{ ref('int_clients__xyz') }}

),

final as (

    select
        cast(abc_ranking.client_id as string) as client_id,
        {{ as_of_date() }} as as_of_date,
        {{ to_money('abc_ranking.net_revenue_365d') }} as net_revenue_365d,
        {{ to_money('abc_ranking.margin_365d') }} as margin_365d,
        cast(abc_ranking.revenue_rank as bigint) as revenue_rank,
        cast(abc_ranking.revenue_share as double) as revenue_share,
        cast(abc_ranking.cumulative_share as double) as cumulative_share,
        cast(abc_ranking.abc_class as string) as abc_class,
        cast(abc_ranking.is_ranked as boolean) as is_ranked,
        cast(abc_ranking.unranked_reason as string) as unranked_reason,
        cast(abc_ranking.margin_rank as bigint) as margin_rank,
        cast(abc_ranking.abc_class_margin as string) as abc_class_margin,
        cast(xyz.xyz_cv as double) as xyz_cv,
        cast(xyz.xyz_class as string) as xyz_class,
        cast(abc_ranking.abc_class || xyz.xyz_class as string) as abc_xyz_class,
        cast(abc_ranking.cumulative_margin_share as double) as cumulative_margin_share,
        cast(abc_ranking.orders_in_window as bigint) as orders_in_window

    from abc_ranking
    left join xyz
        on abc_ranking.client_id = xyz.client_id

)

select * from final
