{#- Why each churned client left, as far as the data shows (docs/rules.md "Win-back").
    CRM-based reasons (silence, complaints, decision maker gone) are null without CRM. -#}
{%- set crm_enabled = 'true' if has_crm() else 'false' -%}

with

churn_signals as (

    select * from {{ ref('client_churn_signals') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

invoices as (

    select * from {{ ref('stg_erp__invoices') }}

),

interactions as (

    select * from {{ ref('stg_crm__interactions') }}
    where {{ crm_enabled }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}
    where {{ crm_enabled }}

),

as_of as (

    select {{ as_of_date() }} as as_of_date

),

churned as (

    select
        churn_signals.client_id,
        churn_signals.last_order_date,
        churn_signals.has_poor_payment_discipline as has_poor_payment_now,
        as_of.as_of_date
    from churn_signals
    cross join as_of
    where churn_signals.is_churned and churn_signals.last_order_date is not null

),

contact_history as (

    select
        churned.client_id,
        max(cast(interactions.occurred_at as date)) as last_contact_date,
        count(*) filter (
            where interactions.kind = 'complaint'
            and cast(interactions.occurred_at as date) >= churned.last_order_date - 364
        ) as complaints_count
    from churned
    inner join interactions
        on
            churned.client_id = interactions.client_id
            and cast(interactions.occurred_at as date) <= churned.as_of_date
    group by churned.client_id

),

decision_makers_gone as (

    select
        churned.client_id,
        count(*) as decision_makers_gone
    from churned
    inner join contacts
        on churned.client_id = contacts.client_id
    where
        contacts.is_decision_maker
        and contacts.left_at
        between churned.last_order_date - ({{ var('dm_left_window_days', 90) }} - 1) and churned.as_of_date
    group by churned.client_id

),

invoice_lateness as (

    select
        churned.client_id,
        count(*) as invoices_due,
        count(*) filter (
            where
            (
                invoices.paid_date <= churned.as_of_date
                and {{ dbt.datediff('invoices.due_date', 'invoices.paid_date', 'day') }} > {{ var('payment_late_days', 30) }}
            )
            or (
                (invoices.paid_date is null or invoices.paid_date > churned.as_of_date)
                and {{ dbt.datediff('invoices.due_date', 'churned.as_of_date', 'day') }} > {{ var('payment_late_days', 30) }}
            )
        ) as late_invoices
    from churned
    inner join invoices on churned.client_id = invoices.client_id
    where
        invoices.due_date between churned.last_order_date - 364 and churned.as_of_date
        and invoices.issued_date <= churned.as_of_date
    group by churned.client_id

),

volume as (

    select
        churned.client_id,
        coalesce(sum(orders.net_revenue) filter (
            where orders.order_date > churned.last_order_date - 90
        ), 0) as revenue_last_90d_before_leaving,
        coalesce(sum(orders.net_revenue) filter (
            where orders.order_date <= churned.last_order_date - 90
        ), 0) / 3 as baseline_revenue_90d_before_leaving
    from churned
    inner join orders
        on
            churned.client_id = orders.client_id
            and orders.order_date between churned.last_order_date - 359 and churned.last_order_date
    group by churned.client_id

),

flags as (

    select
        churned.client_id,
        churned.last_order_date,
        contact_history.last_contact_date,
        case
            when {{ crm_enabled }}
                then
                    contact_history.last_contact_date is null
                    or contact_history.last_contact_date
                    <= churned.last_order_date - {{ var('silence_days', 90) }}
        end as reason_silence,
        case when {{ crm_enabled }} then coalesce(contact_history.complaints_count, 0) end as complaints_count,
        case when {{ crm_enabled }} then coalesce(contact_history.complaints_count, 0) > 0 end as reason_complaints,
        case
            when {{ crm_enabled }} then coalesce(decision_makers_gone.decision_makers_gone, 0) > 0
        end as reason_decision_maker_gone,
        coalesce(invoice_lateness.late_invoices, 0) as late_invoices,
        coalesce(invoice_lateness.invoices_due, 0) as invoices_due,
        -- null (cannot be judged) when no invoice is due in the window and the current
        -- payment discipline cannot be judged either (e.g. an empty invoices table)
        case
            when coalesce(invoice_lateness.invoices_due, 0) > 0 or churned.has_poor_payment_now is not null
                then
                    coalesce(churned.has_poor_payment_now, false)
                    or coalesce(
                        invoice_lateness.late_invoices >= {{ var('payment_min_late_invoices', 2) }}
                        and invoice_lateness.late_invoices
                        >= {{ var('payment_late_share', 0.25) }} * invoice_lateness.invoices_due,
                        false
                    )
        end as reason_payment,
        coalesce(
            {{ has_volume_drop(
                'volume.revenue_last_90d_before_leaving',
                'volume.baseline_revenue_90d_before_leaving'
            ) }},
            false
        ) as reason_volume_decline
    from churned
    left join contact_history on churned.client_id = contact_history.client_id
    left join decision_makers_gone on churned.client_id = decision_makers_gone.client_id
    left join invoice_lateness on churned.client_id = invoice_lateness.client_id
    left join volume on churned.client_id = volume.client_id

),

final as (

    select
        *,
        coalesce(
            nullif(
                concat_ws(
                    '; ',
                    case
                        when reason_silence
                            then
                                'silence: no contact from us in the {{ var("silence_days", 90) }} days'
                                || ' before the last order or since'
                    end,
                    case
                        when reason_complaints
                            then 'complaints: ' || complaints_count || ' in the year before leaving or since'
                    end,
                    case
                        when reason_payment
                            then
                                'payment: '
                                || case
                                    when late_invoices > 0
                                        then late_invoices || ' of ' || invoices_due || ' invoices paid late or overdue'
                                    else 'poor payment discipline'
                                end
                    end,
                    case when reason_decision_maker_gone then 'decision maker gone' end,
                    case
                        when reason_volume_decline
                            then 'volume decline: last 90 days before leaving under the baseline'
                    end
                ),
                ''
            ),
            'no reason visible in the data'
        ) as churn_reasons
    from flags

)

select
    client_id,
    last_order_date,
    last_contact_date,
    cast(reason_silence as boolean) as reason_silence,
    cast(complaints_count as bigint) as complaints_count,
    cast(reason_complaints as boolean) as reason_complaints,
    cast(late_invoices as bigint) as late_invoices,
    cast(invoices_due as bigint) as invoices_due,
    cast(reason_payment as boolean) as reason_payment,
    cast(reason_decision_maker_gone as boolean) as reason_decision_maker_gone,
    cast(reason_volume_decline as boolean) as reason_volume_decline,
    cast(reason_payment as boolean) as requires_revised_terms,
    churn_reasons
from final
